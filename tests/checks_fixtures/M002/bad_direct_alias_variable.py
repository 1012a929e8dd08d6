# ruff: noqa
import torch
import torch.nn.functional as F
from torch.nn.functional import scaled_dot_product_attention as sdpa


class Attn(torch.nn.Module):
    def forward(self, q, k, v):
        a = F.scaled_dot_product_attention(q, k, v)  # <- M002
        b = sdpa(q, k, v)  # <- M002
        fn = torch.nn.functional.scaled_dot_product_attention
        c = fn(q, k, v)  # <- M002
        d = getattr(F, "scaled_dot_product_attention")(q, k, v)  # <- M002
        return a + b + c + d
