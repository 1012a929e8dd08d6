# ruff: noqa
from diffusers.models.attention_dispatch import dispatch_attention_fn


class Processor:
    _attention_backend = None
    _parallel_config = None

    def __call__(self, attn, q, k, v, mask=None):
        return dispatch_attention_fn(q, k, v, attn_mask=mask, backend=self._attention_backend, parallel_config=self._parallel_config)


class PlainAttention:  # no backend to honour
    def forward(self, q, k, v):
        return dispatch_attention_fn(q, k, v)
