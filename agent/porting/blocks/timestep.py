"""Timestep embeddings: diffusers' `Timesteps` (the sinusoidal projection) and
`TimestepEmbedding` (the MLP after it), and the function `get_timestep_embedding`.

What varies between reference implementations is the order of the sine and cosine halves
(`flip_sin_to_cos`), the frequency denominator (`half` or `half - 1`: `downscale_freq_shift`),
the MLP's activation and biases; shapes say the rest.
"""

from __future__ import annotations

from typing import Any

from .base import (
    BlockCode,
    Call,
    Family,
    Proposal,
    Scalar,
    grid,
    is_tensor,
    neutral,
    only_first_argument,
)
from .mlp_embedding import ACTIVATIONS, EMBEDDINGS, chained_pair, embedding_arguments

# (flip_sin_to_cos, downscale_freq_shift) in the order they are tried: DiT/ADM first
PHASES = ((True, 0), (False, 1), (True, 1), (False, 0))


def _timesteps_call(num_channels: str, flip: Scalar, shift: Scalar) -> str:
    return f"Timesteps({num_channels}, flip_sin_to_cos={flip}, downscale_freq_shift={shift})"


def _embedding(choice: dict[str, Scalar]) -> str:
    """The `TimestepEmbedding(...)` constructor template for one setting."""
    return f"TimestepEmbedding({embedding_arguments(choice)})"


def _timestep_input(calls: list[Call]) -> str | None:
    if not calls or not all(is_tensor(c.positional(0), ndim=1) for c in calls):
        return "its first argument is not a 1-D tensor of timesteps"
    if not only_first_argument(calls):
        return "it is called with more than the timesteps (the block takes only them)"
    return None


class TimestepEmbeddingFamily(Family):
    """A module that embeds timesteps sinusoidally and runs two linear layers on them."""

    name = "timestep-embedding"
    block = "Timesteps + TimestepEmbedding"
    aliases = {"in_channels": ("frequency", "freq", "channels"), "time_embed_dim": ("hidden", "dim", "size", "embed")}

    def choices(self) -> list[dict[str, Scalar]]:
        return [
            {"flip_sin_to_cos": f, "downscale_freq_shift": s, **rest}
            for f, s in PHASES
            for rest in grid(act_fn=ACTIVATIONS, bias=(True, False), out_dim=(False, True))
        ]

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        pair = chained_pair(module)
        if isinstance(pair, str):
            return pair
        freq, hidden, out, bias1 = pair
        why = _timestep_input(calls)
        if why:
            return why
        if not all(is_tensor(c.output, ndim=2) and c.output.shape[-1] == out for c in calls):
            return f"its output is not [batch, {out}]"
        dims = {"in_channels": freq, "time_embed_dim": hidden, "out_dim": out}
        return [Proposal(c, dims) for c in self.choices() if c["bias"] == bias1 and c["out_dim"] == (out != hidden)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        return BlockCode(
            imports=((EMBEDDINGS, "TimestepEmbedding"), (EMBEDDINGS, "Timesteps")),
            main=_embedding(choice),
            slots=(("time_proj", _timesteps_call("{in_channels}", choice["flip_sin_to_cos"], choice["downscale_freq_shift"])),),
            # Timesteps computes in float32; the cast (a no-op in float32, where the proof ran) lets a
            # half-precision model run, as diffusers' own models cast before their TimestepEmbedding
            call="{self}({time_proj}({0}).to({self}.linear_1.weight.dtype))",
        )


def sinusoidal(x: Any) -> bool:
    """Rows of sine/cosine pairs (the two halves, in either order): x[:, i]**2 + x[:, i + half]**2 == 1,
    what a sinusoidal timestep embedding is and a learned feature almost never is."""
    if not is_tensor(x, ndim=2, floating=True) or x.shape[-1] < 2 or x.shape[-1] % 2:
        return False
    half = x.shape[-1] // 2
    total = x[:, :half].double() ** 2 + x[:, half:].double() ** 2
    return bool(((total - 1).abs() <= 1e-4).all())


class TimestepMLPFamily(Family):
    """The MLP after a sinusoidal timestep embedding computed elsewhere (the model calls a function
    or another module for the sinusoids, then `Linear, act, Linear` on them): `TimestepEmbedding`
    alone, as diffusers' UNets hold it (`time_embedding`). Other two-layer MLPs are `FeedForward`."""

    name = "timestep-mlp"
    block = "TimestepEmbedding"
    aliases = TimestepEmbeddingFamily.aliases

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(act_fn=ACTIVATIONS, bias=(True, False), out_dim=(False, True))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        pair = chained_pair(module)
        if isinstance(pair, str):
            return pair
        freq, hidden, out, bias1 = pair
        if not calls or not only_first_argument(calls) or not all(sinusoidal(c.positional(0)) for c in calls):
            return "it is not called on sinusoidal features alone (sine/cosine halves whose squares sum to 1)"
        if not all(is_tensor(c.output, ndim=2) and c.output.shape[-1] == out for c in calls):
            return f"its output is not [batch, {out}]"
        dims = {"in_channels": freq, "time_embed_dim": hidden, "out_dim": out}
        return [Proposal(c, dims) for c in self.choices() if c["bias"] == bias1 and c["out_dim"] == (out != hidden)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        return BlockCode(imports=((EMBEDDINGS, "TimestepEmbedding"),), main=_embedding(choice))


class TimestepsFamily(Family):
    """A parameter-free module that turns timesteps into sinusoidal features."""

    name = "timesteps"
    block = "Timesteps"
    aliases = {"num_channels": ("dim", "channels", "size", "embed")}

    def choices(self) -> list[dict[str, Scalar]]:
        return [{"flip_sin_to_cos": f, "downscale_freq_shift": s} for f, s in PHASES]

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        if any(True for _ in module.parameters()):
            return "it has parameters (the sinusoidal projection has none)"
        why = _timestep_input(calls)
        if why:
            return why
        widths = {c.output.shape[-1] for c in calls if is_tensor(c.output, ndim=2)}
        if len(widths) != 1 or len(calls) != sum(is_tensor(c.output, ndim=2) for c in calls):
            return "its output is not [batch, channels]"
        width = widths.pop()
        return [Proposal(c, {"num_channels": width}) for c in self.choices()]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        return BlockCode(
            imports=((EMBEDDINGS, "Timesteps"),),
            main=_timesteps_call("{num_channels}", choice["flip_sin_to_cos"], choice["downscale_freq_shift"]),
        )


class TimestepFunctionFamily(Family):
    """A function `f(timesteps, dim, [max_period], ...)` returning [batch, dim] sinusoids."""

    name = "timestep-function"
    block = "get_timestep_embedding"
    kind = "function"

    def choices(self) -> list[dict[str, Scalar]]:
        return [{"flip_sin_to_cos": f, "downscale_freq_shift": s, "max_period": m} for f, s in PHASES for m in (False, True)]

    def propose(self, fn: Any, calls: list[Call]) -> list[Proposal] | str:
        if not calls:
            return "never called"
        params = calls[0].params
        first = calls[0]
        tensors = [p for p in params if is_tensor(first.bound.get(p), ndim=1)]
        if len(tensors) != 1 or not all(is_tensor(c.bound.get(tensors[0]), ndim=1) for c in calls):
            return "no single 1-D tensor argument (the timesteps)"
        if not all(is_tensor(c.output, ndim=2) for c in calls):
            return "it does not return [batch, dim]"
        dims_params = [p for p in params if all(type(c.bound.get(p)) is int and c.bound[p] == c.output.shape[-1] for c in calls)]
        if not dims_params:
            return "no argument gives the embedding width"
        roles: dict[str, Scalar] = {"timesteps": tensors[0], "embedding_dim": dims_params[0]}
        period = next((p for p in params if "period" in p and p not in roles.values()), None)
        ignore = tuple(p for p in params if p not in roles.values() and p != period)
        if not all(neutral(c.bound.get(p)) for c in calls for p in ignore):
            return f"it is called with {', '.join(ignore)} set (the block has no such option)"
        out = []
        for choice in self.choices():
            if choice["max_period"] != (period is not None):
                continue
            dims = {**roles, **({"max_period": period} if period else {})}
            out.append(Proposal(choice, dims, ignore))
        return out

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        call = (
            "get_timestep_embedding({timesteps}, {embedding_dim}, "
            f"flip_sin_to_cos={choice['flip_sin_to_cos']}, downscale_freq_shift={choice['downscale_freq_shift']}"
        )
        call += ", max_period={max_period})" if choice["max_period"] else ")"
        return BlockCode(imports=((EMBEDDINGS, "get_timestep_embedding"),), main=call)
