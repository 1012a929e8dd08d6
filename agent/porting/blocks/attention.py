"""Attention: diffusers' `Attention` module (to_q / to_k / to_v / to_out, optional q/k norms) with
a processor written into the port that computes through `dispatch_attention_fn`, so the attention
backend stays switchable (`model.set_attention_backend(...)`).

Enumerated: the number of heads (from the module's attributes, else common head widths), rotary
position embedding applied to q and k (none; complex pairs; real interleaved pairs; real halves,
computed from the token count with diffusers' `get_1d_rotary_pos_embed` / `apply_rotary_emb`),
q/k norm kind. From the shapes: a fused qkv or separate projections (the mapping engine splits
a fused one by rows), biases, the context width of cross-attention. From the calls: where the
context and the mask are passed.
"""

from __future__ import annotations

import textwrap
from typing import Any

from .base import (
    BlockCode,
    Call,
    Family,
    Proposal,
    Scalar,
    covered,
    float_attr,
    grid,
    int_attrs,
    is_tensor,
    linears,
    modules_of,
    words,
)

PROCESSOR_MODULE = "diffusers.models.attention_processor"
DISPATCH = "diffusers.models.attention_dispatch"
EMBEDDINGS = "diffusers.models.embeddings"
HEAD_COUNTS = ("num_heads", "heads", "n_heads", "nheads", "n_head", "num_attention_heads", "h")
HEAD_WIDTHS = ("head_dim", "dim_head", "d_head", "attention_head_dim", "head_size")
COMMON_WIDTHS = (64, 128, 32, 16, 8, 80, 96, 40, 72)
ROTARY = ("none", "complex", "real-interleaved", "real-halves")
THETAS = (10000.0,)
POSITIONS = (-1, 1, 2, 3)

_ROTARY_LINES = {
    "complex": (
        "        freqs = get_1d_rotary_pos_embed(query.shape[-1], query.shape[1], theta={theta}, use_real=False)",
        "        freqs = freqs.to(query.device)[None]  # [1, tokens, head_dim / 2]; apply_rotary_emb adds the head axis",
        "        query = apply_rotary_emb(query, freqs, use_real=False)",
        "        key = apply_rotary_emb(key, freqs, use_real=False)",
    ),
    "real-interleaved": (
        "        cos, sin = get_1d_rotary_pos_embed(query.shape[-1], query.shape[1], theta={theta}, use_real=True)",
        "        freqs = (cos.to(query.device), sin.to(query.device))",
        "        query = apply_rotary_emb(query, freqs, use_real=True, use_real_unbind_dim=-1, sequence_dim=1)",
        "        key = apply_rotary_emb(key, freqs, use_real=True, use_real_unbind_dim=-1, sequence_dim=1)",
    ),
    "real-halves": (
        "        cos, sin = get_1d_rotary_pos_embed(",
        "            query.shape[-1], query.shape[1], theta={theta}, use_real=True, repeat_interleave_real=False",
        "        )",
        "        freqs = (cos.to(query.device), sin.to(query.device))",
        "        query = apply_rotary_emb(query, freqs, use_real=True, use_real_unbind_dim=-2, sequence_dim=1)",
        "        key = apply_rotary_emb(key, freqs, use_real=True, use_real_unbind_dim=-2, sequence_dim=1)",
    ),
}
_ROTARY_WORDS = {
    "complex": "rotary position embedding on interleaved channel pairs (complex form)",
    "real-interleaved": "rotary position embedding on interleaved channel pairs",
    "real-halves": "rotary position embedding on the two halves of each head",
}


def processor_source(choice: dict[str, Scalar]) -> str:
    """The processor class for one setting; `{processor}` is its name."""
    context = choice["context_pos"] != -1
    rotary = choice["rotary"]
    what = ["self-attention" if not context else "attention over `encoder_hidden_states` when given"]
    if rotary != "none":
        what.append(_ROTARY_WORDS[str(rotary)] + ", computed from the token count")
    if choice["qk_norm"] != "none":
        what.append("q/k normalised per head")
    kv = "context" if context else "hidden_states"
    doc = textwrap.wrap(f"Processor for `Attention`: {'; '.join(what)}; attention through `dispatch_attention_fn`.", 100)
    lines = [
        "class {processor}:",
        *(['    """' + doc[0] + '"""'] if len(doc) == 1 else ['    """' + doc[0], *("    " + d for d in doc[1:]), '    """']),
        "",
        "    _attention_backend = None",
        "    _parallel_config = None",
        "",
        "    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None):",
    ]
    if context:
        lines.append("        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states")
    lines += [
        "        query = attn.to_q(hidden_states).unflatten(-1, (attn.heads, -1))",
        f"        key = attn.to_k({kv}).unflatten(-1, (attn.heads, -1))",
        f"        value = attn.to_v({kv}).unflatten(-1, (attn.heads, -1))",
    ]
    if choice["qk_norm"] != "none":
        lines += ["        query = attn.norm_q(query)", "        key = attn.norm_k(key)"]
    lines += [line.replace("{theta}", repr(choice["theta"])) for line in _ROTARY_LINES.get(str(rotary), ())]
    if choice["mask_pos"] != -1:
        lines += [
            "        if attention_mask is not None and attention_mask.ndim == 2:  # [batch, keys]: True attends",
            "            attention_mask = attention_mask[:, None, None, :]",
        ]
    lines += [
        "        hidden_states = dispatch_attention_fn(",
        "            query, key, value, attn_mask=attention_mask, backend=self._attention_backend, parallel_config=self._parallel_config",
        "        )",
        "        hidden_states = attn.to_out[0](hidden_states.flatten(2, 3).to(query.dtype))",
        "        return attn.to_out[1](hidden_states)",
    ]
    return "\n".join(lines) + "\n"


def _head_counts(module: Any, inner: int) -> list[int]:
    counts = [h for h in int_attrs(module, HEAD_COUNTS) if inner % h == 0]
    counts += [inner // w for w in int_attrs(module, HEAD_WIDTHS) if inner % w == 0]
    scale = float_attr(module, ("scale", "softmax_scale"))
    if scale and scale > 0:
        width = round(scale**-2)
        if width and inner % width == 0:
            counts.append(inner // width)
    if not counts:
        counts = [inner // w for w in COMMON_WIDTHS if inner % w == 0 and inner // w > 0]
    return list(dict.fromkeys(counts))


def _qk_norm(module: Any, extra: list[Any]) -> tuple[str, float | None, bool] | str:
    """(kind, eps, affine) of the q/k norms among the modules that are not projections."""
    from torch import nn

    if not extra:
        return ("none", None, True)
    if len(extra) != 2 or type(extra[0]) is not type(extra[1]):
        return "parameters besides the projections that are not a q/k norm pair"
    norm = extra[0]
    if isinstance(norm, nn.LayerNorm):
        return ("layer_norm", norm.eps, norm.elementwise_affine)
    params = dict(norm.named_parameters())
    eps = float_attr(norm, ("eps", "epsilon", "variance_epsilon"))
    if set(params) == {"weight"} and eps is not None:
        return ("rms_norm", eps, True)
    return f"q/k norm {type(norm).__name__} is not a LayerNorm or an RMSNorm"


class AttentionFamily(Family):
    name = "attention"
    block = "Attention"
    aliases = {
        "query_dim": ("dim", "query", "hidden", "channels", "size", "embed"),
        "cross_attention_dim": ("context", "cross", "encoder", "kv"),
        "heads": ("heads", "head"),
        "dim_head": ("head", "dim"),
        "bias": ("bias", "qkv"),
        "out_dim": ("out",),
        "eps": ("eps",),
    }

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(rotary=ROTARY, theta=THETAS, qk_norm=("none", "layer_norm", "rms_norm"), affine=(True, False),
                    out_bias=(True, False), out_dim=(False, True), context_pos=POSITIONS, mask_pos=POSITIONS)

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        lin = linears(module)
        layers = [module.get_submodule(n) for n, *_ in lin]
        if len(lin) == 2:
            (_, dim, width, bias), (_, inner, out, out_bias) = lin
            if width != 3 * inner:
                return "two projections that are not a fused qkv and an output"
            kv_dim = dim
        elif len(lin) == 4:
            (_, dim, inner, bias), (_, kv_dim, k_out, k_bias), (_, kv_dim2, v_out, v_bias), (_, inner2, out, out_bias) = lin
            if (k_out, v_out, inner2) != (inner, inner, inner) or kv_dim2 != kv_dim or {bias, k_bias, v_bias} != {bias}:
                return "four projections that are not q, k, v and an output"
        else:
            return f"{len(lin)} projections, not a fused qkv or q, k, v, plus an output"
        if out not in (dim, inner):
            return f"output width {out} is neither the query width {dim} nor the inner width {inner}"
        extra = [m for n, m in module.named_children() if not any(m is layer or _holds(m, layer) for layer in layers) and any(True for _ in m.parameters())]
        norm = _qk_norm(module, extra)
        if isinstance(norm, str):
            return norm
        if not covered(module, layers + extra):
            return "it has parameters besides the projections and q/k norms"
        why, context_pos, mask_pos = _call_roles(calls, dim, kv_dim)
        if why:
            return why
        if kv_dim != dim and context_pos == -1:
            return "its keys are projected from another width but it never receives a context"
        kind, eps, affine = norm
        base = {"theta": THETAS[0], "qk_norm": kind, "affine": affine, "out_bias": out_bias, "out_dim": out != dim,
                "context_pos": context_pos, "mask_pos": mask_pos}
        rotaries = ROTARY if context_pos == -1 else ("none",)
        out_props = []
        for heads in _head_counts(module, inner):
            if kind != "none" and _norm_width(extra[0]) not in (None, inner // heads):
                continue
            dims = {"query_dim": dim, "cross_attention_dim": [None, kv_dim] if kv_dim == dim else kv_dim, "heads": heads,
                    "dim_head": inner // heads, "bias": bias, "out_dim": out, "eps": eps}
            out_props += [Proposal({**base, "rotary": r}, dims) for r in rotaries]
        return out_props or f"no head count divides the inner width {inner}"

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{query_dim}"
        if choice["context_pos"] != -1:
            args += ", cross_attention_dim={cross_attention_dim}"
        args += ", heads={heads}, dim_head={dim_head}, bias={bias}"
        if not choice["out_bias"]:
            args += ", out_bias=False"
        if choice["out_dim"]:
            args += ", out_dim={out_dim}"
        if choice["qk_norm"] != "none":
            args += f", qk_norm={choice['qk_norm']!r}, eps={{eps}}"
            if not choice["affine"]:
                args += ", elementwise_affine=False"
        args += ", processor={processor}()"
        imports = [(PROCESSOR_MODULE, "Attention"), (DISPATCH, "dispatch_attention_fn")]
        if choice["rotary"] != "none":
            imports += [(EMBEDDINGS, "apply_rotary_emb"), (EMBEDDINGS, "get_1d_rotary_pos_embed")]
        call = None
        if choice["context_pos"] != -1 or choice["mask_pos"] != -1:
            call = "{self}({0}"
            if choice["context_pos"] != -1:
                call += f", encoder_hidden_states={{{choice['context_pos']}}}"
            if choice["mask_pos"] != -1:
                call += f", attention_mask={{{choice['mask_pos']}}}"
            call += ")"
        return BlockCode(
            imports=tuple(imports),
            main=f"Attention({args})",
            call=call,
            definitions=(("processor", "AttnProcessor", processor_source(choice)),),
            positions=("hidden_states", "encoder_hidden_states", "attention_mask"),
        )


def _norm_width(norm: Any) -> int | None:
    weight = getattr(norm, "weight", None)
    return None if weight is None else int(weight.shape[-1])


def _holds(parent: Any, layer: Any) -> bool:
    return any(m is layer for m in parent.modules())


def _call_roles(calls: list[Call], dim: int, kv_dim: int) -> tuple[str | None, int, int]:
    """Which forward argument is the context and which the mask (by what was passed, else by
    name); any other argument must never have been set."""
    if not calls:
        return "it never ran", -1, -1
    params = calls[0].params
    for c in calls:
        x = c.positional(0)
        if not (is_tensor(x, ndim=3, floating=True) and x.shape[-1] == dim):
            return f"its input is not [batch, tokens, {dim}]", -1, -1
    context_pos = mask_pos = -1
    for i, p in enumerate(params[1:], start=1):
        values = [c.bound.get(p) for c in calls]
        named = words(p)
        if any(is_tensor(v, ndim=3, floating=True) for v in values) or named & {"context", "encoder", "cond", "kv"}:
            if context_pos != -1 or not all(v is None or (is_tensor(v, ndim=3) and v.shape[-1] == kv_dim) for v in values):
                return f"argument {p!r} is not a context of width {kv_dim}", -1, -1
            context_pos = i
        elif "mask" in named:
            mask_pos = i
            if any(v is not None for v in values):
                return "it was called with an attention mask (masked attention is not proven by this library yet)", -1, -1
        elif any(v is not None for v in values):
            return f"it is called with {p!r}, which the block does not take", -1, -1
    if context_pos not in POSITIONS or mask_pos not in POSITIONS:
        return "the context or mask comes after the third argument", -1, -1
    return None, context_pos, mask_pos


class SpatialAttentionFamily(Family):
    """Self-attention over the pixels of an image batch, as autoencoders and UNet mid-blocks write
    it: GroupNorm, q/k/v and output projections (1x1 convolutions or linear layers), the input
    added back. diffusers' `Attention` does it with `norm_num_groups` and `residual_connection`,
    configured as `AutoencoderKL`'s mid-block attention (its default processor takes the 4-D
    input); the mapping engine reshapes 1x1 convolution weights into linear ones."""

    name = "spatial-attention"
    block = "Attention"
    aliases = {"query_dim": ("channels", "in", "dim"), "heads": ("heads", "head"), "dim_head": ("head", "dim"),
               "groups": ("groups",), "eps": ("eps",)}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        from torch import nn

        norms = [m for _, m in modules_of(module, nn.GroupNorm)]
        layers = [m for _, m in modules_of(module, nn.Conv2d, nn.Linear)]
        if len(norms) != 1 or len(layers) != 4:
            return f"{len(norms)} group norms and {len(layers)} projections, not one norm and q, k, v and an output"
        if not covered(module, [*norms, *layers]) or not norms[0].affine:
            return "it has parameters besides the norm and the projections (or an affine-free norm)"
        channels = norms[0].num_channels
        for layer in layers:
            if isinstance(layer, nn.Conv2d) and (layer.kernel_size != (1, 1) or layer.stride != (1, 1) or layer.padding != (0, 0) or layer.groups != 1):
                return "its projections are not 1x1 convolutions"
            width = (layer.in_channels, layer.out_channels) if isinstance(layer, nn.Conv2d) else (layer.in_features, layer.out_features)
            if width != (channels, channels):
                return f"its projections are not {channels} -> {channels} wide"
        biases = {layer.bias is not None for layer in layers}
        if len(biases) != 1:
            return "some projections have a bias and others not"
        for c in calls:
            x = c.positional(0)
            if not (is_tensor(x, ndim=4, floating=True) and x.shape[1] == channels and len(c.args) + len(c.kwargs) == 1):
                return f"it is not called with one image batch [batch, {channels}, height, width]"
            if not (is_tensor(c.output, ndim=4) and tuple(c.output.shape) == tuple(x.shape)):
                return "its output is not shaped as its input"
        heads = [h for h in int_attrs(module, HEAD_COUNTS) if channels % h == 0] or [1]
        return [Proposal({"bias": biases.pop()}, {"query_dim": channels, "heads": h, "dim_head": channels // h,
                                                   "groups": norms[0].num_groups, "eps": norms[0].eps}) for h in heads]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{query_dim}, heads={heads}, dim_head={dim_head}, eps={eps}, norm_num_groups={groups}, residual_connection=True"
        args += f", bias={choice['bias']}, upcast_softmax=True, _from_deprecated_attn_block=True"
        return BlockCode(imports=((PROCESSOR_MODULE, "Attention"),), main=f"Attention({args})")
