"""Two-layer embedding MLPs on a vector per sample (Linear, activation, Linear on [batch, features]):
diffusers' `TimestepEmbedding`, the block its models use after a sinusoidal projection (FLUX.1's
`MLPEmbedder` on the 256 timestep features, guidance and pooled text vectors).

The timestep family (`timestep.py`) covers a module that also computes the sinusoids from 1-D
timesteps; this one covers the MLP alone, called on features computed elsewhere. Token sequences
([batch, tokens, dim]) are left to `FeedForward`. Enumerated: the activation; from the shapes:
widths and biases.
"""

from __future__ import annotations

from typing import Any

from .base import (
    BlockCode,
    Call,
    Family,
    Proposal,
    Scalar,
    covered,
    grid,
    is_tensor,
    linears,
    only_first_argument,
)

EMBEDDINGS = "diffusers.models.embeddings"
ACTIVATIONS = ("silu", "gelu", "mish", "relu")


def chained_pair(module: Any) -> tuple[int, int, int, bool] | str:
    """(input, hidden, output width, bias) of a module that is exactly two chained Linear layers
    with the same bias setting (what `TimestepEmbedding` holds), or why it is not."""
    lin = linears(module)
    if len(lin) != 2:
        return f"{len(lin)} linear layers, not the two of an embedding MLP"
    (_, features, hidden, bias1), (_, hidden2, out, bias2) = lin
    if hidden2 != hidden or not covered(module, [module.get_submodule(n) for n, *_ in lin]):
        return "its linear layers do not chain (or it has other parameters)"
    if bias1 != bias2:
        return "one linear layer has a bias and the other not"
    return features, hidden, out, bias1


def embedding_arguments(choice: dict[str, Scalar]) -> str:
    """`TimestepEmbedding`'s constructor arguments for a setting (act_fn, out_dim, bias)."""
    args = "{in_channels}, {time_embed_dim}"
    if choice["act_fn"] != "silu":
        args += f", act_fn={choice['act_fn']!r}"
    if choice["out_dim"]:
        args += ", out_dim={out_dim}"
    if not choice["bias"]:
        args += ", sample_proj_bias=False"
    return args


class MLPEmbeddingFamily(Family):
    name = "mlp-embedding"
    block = "TimestepEmbedding"
    aliases = {"in_channels": ("in", "channels", "features", "dim"), "time_embed_dim": ("hidden", "dim", "size", "embed"),
               "out_dim": ("out",)}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(act_fn=ACTIVATIONS, bias=(True, False), out_dim=(False, True))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        pair = chained_pair(module)
        if isinstance(pair, str):
            return pair
        features, hidden, out, bias = pair
        if not calls or not only_first_argument(calls):
            return "it is not called with one input"
        if not all(is_tensor(c.positional(0), ndim=2, floating=True) and c.positional(0).shape[-1] == features for c in calls):
            return f"its input is not one vector per sample [batch, {features}]"
        if not all(is_tensor(c.output, ndim=2) and c.output.shape[-1] == out for c in calls):
            return f"its output is not [batch, {out}]"
        dims = {"in_channels": features, "time_embed_dim": hidden, "out_dim": out}
        return [Proposal({"act_fn": act, "bias": bias, "out_dim": out != hidden}, dims) for act in ACTIVATIONS]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        return BlockCode(imports=((EMBEDDINGS, "TimestepEmbedding"),), main=f"TimestepEmbedding({embedding_arguments(choice)})")
