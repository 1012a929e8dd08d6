# ruff: noqa
import torch
import torch.nn.functional as F

from diffusers.models.attention_dispatch import dispatch_attention_fn


class AttnProcessor:
    def __init__(self):
        if not hasattr(F, "scaled_dot_product_attention"):
            raise ImportError("needs torch 2")

    def __call__(self, attn, q, k, v):
        probs = torch.softmax(attn.logits, dim=-1)  # a softmax that is not attention
        if F.scaled_dot_product_attention is None:
            return None
        return dispatch_attention_fn(q, k, v, backend=self._attention_backend) * probs.sum()


class LegacyAttnProcessor2_0:
    def __call__(self, attn, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)  # the legacy SDPA processor, by its name
