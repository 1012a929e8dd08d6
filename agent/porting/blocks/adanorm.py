"""Adaptive layer norms: diffusers' `AdaLayerNormContinuous` (a norm whose scale and shift come
from a conditioning vector through SiLU + Linear; with the final projection that follows it in
DiT/SD3-style output layers as a separate `nn.Linear`), and `AdaLayerNormZero` (the six-way
modulation of a DiT block, returning the normalised input and the other five chunks).

The chunk order (shift/scale or scale/shift) is not a setting: the mapping engine reorders the
modulation weights by running the layer. Enumerated: norm kind and eps; from the shapes: affine
norm, biases, whether a projection follows.
"""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, covered, grid, is_tensor, linears

NORMALIZATION = "diffusers.models.normalization"
EPS = (1e-6, 1e-5)


def _norm_params(module: Any, width: int, exclude: list[Any]) -> tuple[bool, bool] | str:
    """(affine, has bias) of the norm: the parameters that are not the linear layers."""
    taken = {id(p) for m in exclude for p in m.parameters()}
    rest = [p for p in module.parameters() if id(p) not in taken]
    if any(p.dim() != 1 or p.shape[0] != width for p in rest) or len(rest) > 2:
        return "it has parameters besides the modulation, the norm and the projection"
    return bool(rest), len(rest) == 2


def _inputs(calls: list[Call]) -> tuple[int, int] | str:
    """(width of x, width of the conditioning) when every call is f(x [B, N, D], c [B, C])."""
    if not calls:
        return "it never ran"
    widths = set()
    for c in calls:
        x, cond = c.positional(0), c.positional(1)
        if not (is_tensor(x, ndim=3, floating=True) and is_tensor(cond, ndim=2, floating=True)):
            return "it is not called as f(x [batch, tokens, dim], conditioning [batch, dim])"
        if len(c.args) + len(c.kwargs) != 2:
            return "it is called with more than the input and the conditioning"
        widths.add((x.shape[-1], cond.shape[-1]))
    return widths.pop() if len(widths) == 1 else "its input widths vary"


class AdaLayerNormContinuousFamily(Family):
    name = "ada-layer-norm-continuous"
    block = "AdaLayerNormContinuous"
    aliases = {"embedding_dim": ("hidden", "dim", "size", "embed"), "conditioning_embedding_dim": ("cond", "hidden", "dim"),
               "out_features": ("out", "patch", "channels")}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(norm_type=("layer_norm", "rms_norm"), eps=EPS, affine=(False, True), norm_bias=(True, False),
                    bias=(True, False), proj=(False, True), proj_bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        widths = _inputs(calls)
        if isinstance(widths, str):
            return widths
        dim, cond = widths
        lin = linears(module)
        ada = [entry for entry in lin if entry[1] == cond and entry[2] == 2 * dim]
        proj = [entry for entry in lin if entry not in ada[:1] and entry[1] == dim]
        if len(ada) < 1 or len(lin) - 1 != len(proj[:1]) or len(lin) > 2:
            return f"no single Linear({cond}, {2 * dim}) modulation (with at most one projection after the norm)"
        parts = [module.get_submodule(entry[0]) for entry in ada[:1] + proj[:1]]
        norm = _norm_params(module, dim, parts)
        if isinstance(norm, str):
            return norm
        affine, norm_bias = norm
        out = [c.output for c in calls]
        width = proj[0][2] if proj else dim
        if not all(is_tensor(o, ndim=3) and o.shape[-1] == width for o in out):
            return f"its output is not [batch, tokens, {width}]"
        dims = {"embedding_dim": dim, "conditioning_embedding_dim": cond, "out_features": width}
        base = {"affine": affine, "norm_bias": norm_bias, "bias": ada[0][3], "proj": bool(proj), "proj_bias": proj[0][3] if proj else True}
        return [Proposal({**base, "norm_type": kind, "eps": eps}, dims) for kind in ("layer_norm", "rms_norm") for eps in EPS
                if kind == "layer_norm" or not norm_bias]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{embedding_dim}, {conditioning_embedding_dim}"
        args += f", elementwise_affine={choice['affine']}, eps={choice['eps']!r}"
        if not choice["bias"] or (choice["affine"] and not choice["norm_bias"]):
            args += f", bias={choice['bias']}"
        if choice["norm_type"] != "layer_norm":
            args += f", norm_type={choice['norm_type']!r}"
        if not choice["proj"]:
            return BlockCode(imports=((NORMALIZATION, "AdaLayerNormContinuous"),), main=f"AdaLayerNormContinuous({args})")
        linear = "nn.Linear({embedding_dim}, {out_features}" + ("" if choice["proj_bias"] else ", bias=False") + ")"
        return BlockCode(
            imports=((NORMALIZATION, "AdaLayerNormContinuous"), ("torch", "nn")),
            main=f"AdaLayerNormContinuous({args})",
            slots=(("proj_out", linear),),
            call="{proj_out}({self}({0}, {1}))",
        )


class AdaLayerNormZeroFamily(Family):
    name = "ada-layer-norm-zero"
    block = "AdaLayerNormZero"
    aliases = {"embedding_dim": ("hidden", "dim", "size", "embed")}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        widths = _inputs(calls)
        if isinstance(widths, str):
            return widths
        dim, cond = widths
        lin = linears(module)
        if cond != dim or len(lin) != 1 or lin[0][1:3] != (dim, 6 * dim) or not covered(module, [module.get_submodule(lin[0][0])]):
            return f"not one Linear({dim}, {6 * dim}) modulation with a parameter-free norm"
        if not all(isinstance(c.output, tuple) and len(c.output) == 5 for c in calls):
            return "it does not return the normalised input and five modulation chunks"
        return [Proposal({"bias": lin[0][3]}, {"embedding_dim": dim})]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{embedding_dim}" + ("" if choice["bias"] else ", bias=False")
        return BlockCode(imports=((NORMALIZATION, "AdaLayerNormZero"),), main=f"AdaLayerNormZero({args})", call="{self}({0}, emb={1})")
