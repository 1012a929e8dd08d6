"""Feed-forward layers: diffusers' `FeedForward` (project in with an activation, dropout, project
out) and the projecting activations it is built from (`GELU`, `GEGLU`, `SwiGLU`,
`ApproximateGELU` in diffusers.models.activations).

The activation is enumerated; whether it is gated (the first projection twice as wide as the
second one's input) comes from the shapes. A gated reference that keeps its two input
projections apart (w1, w3) maps onto the one fused `proj` through the mapping engine.
"""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, covered, grid, is_tensor, linears, modules_of

ATTENTION = "diffusers.models.attention"
ACTIVATIONS_MODULE = "diffusers.models.activations"
PLAIN = ("gelu", "gelu-approximate", "geglu-approximate", "linear-silu")
GATED = ("geglu", "swiglu")


def _dropouts(module: Any) -> list[float]:
    from torch import nn

    return [m.p for _, m in modules_of(module, nn.Dropout) if m.p > 0]


def _last_dim_input(calls: list[Call], width: int) -> bool:
    return bool(calls) and all(is_tensor(c.positional(0), floating=True) and c.positional(0).shape[-1] == width for c in calls)


class FeedForwardFamily(Family):
    name = "feed-forward"
    block = "FeedForward"
    aliases = {"dim": ("in", "dim", "features", "channels", "hidden", "size"), "inner_dim": ("hidden", "inner", "mlp", "ff"), "dim_out": ("out",)}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(activation_fn=PLAIN + GATED, bias=(True, False), dim_out=(False, True), dropout=(False, True), final_dropout=(False, True), extra_args=(False, True))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        lin = linears(module)
        parts = [module.get_submodule(n) for n, *_ in lin]
        if len(lin) not in (2, 3) or not covered(module, parts):
            return f"{len(lin)} linear layers (or other parameters), not the two or three of a feed-forward"
        if len({b for *_, b in lin}) != 1:
            return "some projections have a bias and some not"
        bias = lin[0][3]
        if len(lin) == 2:
            (_, dim, hidden, _), (_, inner, out, _) = lin
            gated = hidden == 2 * inner
            if hidden not in (inner, 2 * inner):
                return "the projections do not chain"
        else:  # w1 and w3 side by side, then w2
            shapes = [(d, h) for _, d, h, _ in lin]
            last = [i for i, s in enumerate(shapes) if shapes.count(s) == 1]
            if len(last) != 1 or shapes[last[0]][0] != shapes[(last[0] + 1) % 3][1]:
                return "three projections that are not two inputs and one output"
            _, inner, out, _ = lin[last[0]]
            dim = shapes[(last[0] + 1) % 3][0]
            gated = True
        if not _last_dim_input(calls, dim):
            return f"its input's last dimension is not {dim}"
        drops = _dropouts(module)
        extra = any(len(c.args) + len(c.kwargs) > 1 for c in calls)
        dims = {"dim": dim, "inner_dim": inner, "dim_out": out, "dropout": drops[0] if drops else 0.0}
        acts = GATED if gated else PLAIN
        return [
            Proposal({"activation_fn": a, "bias": bias, "dim_out": out != dim, "dropout": bool(drops),
                      "final_dropout": len(drops) > 1, "extra_args": extra}, dims)
            for a in acts
        ]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{dim}"
        if choice["dim_out"]:
            args += ", dim_out={dim_out}"
        if choice["dropout"]:
            args += ", dropout={dropout}"
        args += f", activation_fn={choice['activation_fn']!r}"
        if choice["final_dropout"]:
            args += ", final_dropout=True"
        args += ", inner_dim={inner_dim}"
        if not choice["bias"]:
            args += ", bias=False"
        return BlockCode(imports=((ATTENTION, "FeedForward"),), main=f"FeedForward({args})", call="{self}({0})" if choice["extra_args"] else None)


# name, class, gated
PROJECTING = (("gelu", "GELU", False), ("gelu-tanh", "GELU", False), ("geglu", "GEGLU", True), ("swiglu", "SwiGLU", True),
              ("approximate-gelu", "ApproximateGELU", False))


class ActivationFamily(Family):
    """A linear projection followed by an activation (gated or not), as one module."""

    name = "projecting-activation"
    block = "GELU / GEGLU / SwiGLU / ApproximateGELU"
    aliases = {"dim_in": ("in", "dim"), "dim_out": ("out", "inner", "hidden")}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(activation=tuple(p[0] for p in PROJECTING), bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        lin = linears(module)
        if len(lin) != 1 or not covered(module, [module.get_submodule(lin[0][0])]):
            return "not a single projection"
        _, dim_in, width, bias = lin[0]
        if not _last_dim_input(calls, dim_in) or not all(is_tensor(c.output) for c in calls):
            return f"its input's last dimension is not {dim_in}"
        outs = {c.output.shape[-1] for c in calls}
        if len(outs) != 1:
            return "its output width varies"
        out = outs.pop()
        gated = out * 2 == width
        if not gated and out != width:
            return "its output is neither the projection nor half of it"
        return [Proposal({"activation": name, "bias": bias}, {"dim_in": dim_in, "dim_out": out}) for name, _, g in PROJECTING if g == gated]

    def block_for(self, choice: dict[str, Scalar]) -> str:
        return next(p[1] for p in PROJECTING if p[0] == choice["activation"])

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        name, cls, _ = next(p for p in PROJECTING if p[0] == choice["activation"])
        args = "{dim_in}, {dim_out}"
        if name == "gelu-tanh":
            args += ', approximate="tanh"'
        if not choice["bias"]:
            args += ", bias=False"
        return BlockCode(imports=((ACTIVATIONS_MODULE, cls),), main=f"{cls}({args})")
