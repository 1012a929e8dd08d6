# ruff: noqa
from diffusers.models.attention_dispatch import dispatch_attention_fn


class Processor:
    _attention_backend = None
    _parallel_config = None

    def __call__(self, attn, q, k, v, mask=None):
        a = dispatch_attention_fn(q, k, v, attn_mask=mask)  # <- M011
        b = dispatch_attention_fn(q, k, v, attn_mask=mask, backend=None)  # <- M011
        return a + b
