"""Two-stream transformer blocks with joint attention (the MMDiT double-stream block of FLUX.1):
diffusers' `FluxTransformerBlock`.

Each stream (image tokens, text tokens) has its own six-way adaLN-Zero modulation from one
conditioning vector, its own q/k/v and output projections with RMS q/k norms, and its own GELU
(tanh) MLP four times as wide; both streams attend jointly (context tokens first) under one
rotary embedding. Read from the module: the width (from the calls), the head width (from the
parameter count, which fixes the layout: fused or split q/k/v both fit, the mapping engine
splits a fused one by rows); from the calls: which argument is the hidden stream, the context,
the conditioning and the rotary embedding (and its form, `rotary_input.py`). Enumerated: which
stream is the context, the order of the two returned streams, the q/k norm eps. The call site
passes the arguments in diffusers' order and puts the returned streams back in the reference's.
"""

from __future__ import annotations

import itertools
from typing import Any

from . import rotary_input
from .base import BlockCode, Call, Family, Proposal, Scalar, is_tensor, linears, neutral, parameter_count

TRANSFORMER_FLUX = "diffusers.models.transformers.transformer_flux"
EPS = (1e-6, 1e-5)
RETURNS = ("hidden-first", "context-first")


def read_roles(calls: list[Call], streams: int) -> dict[str, Any] | str:
    """Positions of the token streams ([batch, tokens, dim] each), the conditioning ([batch, dim])
    and the rotary embedding among the forward's arguments, the same in every call; any other
    argument must have been left unset."""
    if not calls:
        return "it never ran"
    params = calls[0].params
    found: dict[str, Any] = {}
    for c in calls:
        roles: dict[str, Any] = {"streams": [], "temb": None, "rope": None, "form": None}
        for i, p in enumerate(params):
            value = c.bound.get(p)
            form = rotary_input.form_of(value)
            if is_tensor(value, ndim=3, floating=True):
                roles["streams"].append(i)
            elif is_tensor(value, ndim=2, floating=True) and roles["temb"] is None and form is None:
                roles["temb"] = i
            elif form is not None and roles["rope"] is None:
                roles["rope"], roles["form"] = i, form
            elif not neutral(value):
                return f"it is called with {p!r}, which the block does not take"
        if found and roles != found:
            return "its arguments play different roles in different calls"
        found = roles
    if len(found["streams"]) != streams or found["temb"] is None or found["rope"] is None:
        return (f"it is not called with {streams} token stream{'s' if streams > 1 else ''} [batch, tokens, dim], "
                "a conditioning vector [batch, dim] and a rotary embedding")
    widths = {calls[0].bound[params[i]].shape[-1] for i in found["streams"]} | {calls[0].bound[params[found["temb"]]].shape[-1]}
    if len(widths) != 1:
        return "its streams and conditioning do not share one width"
    found["dim"] = widths.pop()
    found["params"] = params
    return found


def head_width(module: Any, dim: int, fixed: int, norms: int) -> int | None:
    """The head width that makes the parameter count add up: `fixed` parameters besides `norms`
    q/k norm scales of one head width each; None when no width dividing `dim` does."""
    rest = parameter_count(module) - fixed
    return rest // norms if rest > 0 and rest % norms == 0 and dim % (rest // norms) == 0 else None


class JointTransformerBlockFamily(Family):
    name = "joint-transformer-block"
    block = "FluxTransformerBlock"
    aliases = {"dim": ("hidden", "dim", "size", "embed", "width"), "num_attention_heads": ("heads", "head"),
               "attention_head_dim": ("head", "dim")}

    def choices(self) -> list[dict[str, Scalar]]:
        return [{"hidden_pos": h, "context_pos": c, "temb_pos": t, "rope_pos": r, "rope": form, "returns": ret, "eps": eps}
                for h, c, t, r in itertools.permutations(range(4)) for form in rotary_input.FORMS for ret in RETURNS for eps in EPS]

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        roles = read_roles(calls, streams=2)
        if isinstance(roles, str):
            return roles
        dim = roles["dim"]
        lin = linears(module)
        if sum(1 for _, i, o, b in lin if (i, o, b) == (dim, 6 * dim, True)) != 2:
            return f"not two Linear({dim}, {6 * dim}) modulations (one per stream)"
        if not all(b for *_, b in lin):
            return "some of its projections have no bias"
        # per stream: modulation, q/k/v, output projection, MLP 4x wide (all with biases); then four q/k norm scales
        fixed = 2 * ((dim * 6 * dim + 6 * dim) + 3 * (dim * dim + dim) + (dim * dim + dim) + (dim * 4 * dim + 4 * dim) + (4 * dim * dim + dim))
        head = head_width(module, dim, fixed, norms=4)
        if head is None:
            return "its parameters are not two streams of modulation, q/k/v, output, 4x MLP and q/k norm scales"
        if max(*roles["streams"], roles["temb"], roles["rope"]) > 3:
            return "its streams, conditioning and rotary embedding are not its first four arguments"
        if not all(isinstance(c.output, tuple) and len(c.output) == 2 and all(is_tensor(t, ndim=3) for t in c.output) for c in calls):
            return "it does not return the two streams"
        dims = {"dim": dim, "num_attention_heads": dim // head, "attention_head_dim": head}
        first, second = roles["streams"]
        out = []
        for hidden, context in ((first, second), (second, first)):  # which stream is the context: decided by running
            for ret in RETURNS:
                if _returns_fit(calls, hidden, context, ret):
                    base = {"hidden_pos": hidden, "context_pos": context, "temb_pos": roles["temb"], "rope_pos": roles["rope"],
                            "rope": roles["form"], "returns": ret}
                    out += [Proposal({**base, "eps": eps}, dims) for eps in EPS]
        return out or "the streams it returns do not have the shapes of the streams it received"

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{dim}, {num_attention_heads}, {attention_head_dim}" + ("" if choice["eps"] == 1e-6 else f", eps={choice['eps']!r}")
        rope = rotary_input.argument(str(choice["rope"]), int(choice["rope_pos"]))
        call = f"{{self}}({{{choice['hidden_pos']}}}, {{{choice['context_pos']}}}, {{{choice['temb_pos']}}}, {rope})"
        if choice["returns"] == "hidden-first":  # diffusers returns (encoder_hidden_states, hidden_states)
            call += "[::-1]"
        return BlockCode(
            imports=((TRANSFORMER_FLUX, "FluxTransformerBlock"),),
            main=f"FluxTransformerBlock({args})",
            call=call,
            definitions=rotary_input.definitions(str(choice["rope"])),
        )


def _returns_fit(calls: list[Call], hidden: int, context: int, returns: str) -> bool:
    """The returned streams have the shapes of the received ones, in the order `returns` says."""
    for c in calls:
        h, ctx = c.bound[c.params[hidden]], c.bound[c.params[context]]
        first, second = (h, ctx) if returns == "hidden-first" else (ctx, h)
        if c.output[0].shape != first.shape or c.output[1].shape != second.shape:
            return False
    return True
