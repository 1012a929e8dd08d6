"""The rotary position embedding a reference block receives, and how the call site hands it to a
diffusers block that takes `image_rotary_emb=(cos, sin)` ([tokens, head_dim] each, channel pairs
interleaved, as `FluxPosEmbed` returns it).

Forms read from the recorded argument:
- `matrices`: one 2x2 rotation per channel pair, [batch, 1, tokens, head_dim / 2, 2, 2] with
  [[cos, -sin], [sin, cos]] (FLUX.1's `EmbedND`); the call site converts it with a small helper
  written into the port, which refuses a batch whose elements carry different embeddings (the
  diffusers block applies one embedding to the whole batch);
- `pair`: already a (cos, sin) pair of [tokens, head_dim] tensors, passed through.

Not a family: shared by the block families whose reference forwards take such an argument.
"""

from __future__ import annotations

from typing import Any

from .base import is_tensor

FORMS = ("matrices", "pair")

HELPER = '''def {rope}(pe):
    """Rotary embedding given as one 2x2 rotation per channel pair ([batch, 1, tokens, head_dim / 2, 2, 2])
    as the (cos, sin) pair of [tokens, head_dim] tensors, channel pairs interleaved, that diffusers'
    attention processors apply."""
    if pe.shape[0] > 1 and not torch.equal(pe, pe[:1].expand_as(pe)):
        raise ValueError("The rotary embedding differs between batch elements; the diffusers block applies one to the whole batch.")
    cos = pe[0, 0, ..., 0, 0].repeat_interleave(2, dim=-1)
    sin = pe[0, 0, ..., 1, 0].repeat_interleave(2, dim=-1)
    return cos, sin
'''


def form_of(value: Any, head_dim: int | None = None) -> str | None:
    """The form of a recorded rotary argument, or None when it is neither."""
    import torch

    if is_tensor(value, ndim=6, floating=True) and tuple(value.shape[-2:]) == (2, 2) and value.shape[1] == 1:
        rot = value.detach().double()
        cos, sin = rot[..., 0, 0], rot[..., 1, 0]
        if not (torch.equal(rot[..., 1, 1], cos) and torch.equal(rot[..., 0, 1], -sin)):
            return None
        return "matrices" if head_dim is None or value.shape[-3] * 2 == head_dim else None
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(is_tensor(v, ndim=2, floating=True) for v in value):
        if value[0].shape != value[1].shape:
            return None
        return "pair" if head_dim is None or value[0].shape[-1] == head_dim else None
    return None


def tokens_of(value: Any, form: str) -> int:
    return int(value.shape[2]) if form == "matrices" else int(value[0].shape[0])


def argument(form: str, position: int) -> str:
    """The call-site expression handing argument `position` to the block as (cos, sin)."""
    return f"{{rope}}({{{position}}})" if form == "matrices" else f"{{{position}}}"


def definitions(form: str) -> tuple[tuple[str, str, str], ...]:
    return (("rope", "rope_cos_sin", HELPER),) if form == "matrices" else ()
