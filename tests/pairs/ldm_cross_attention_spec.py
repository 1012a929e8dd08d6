"""Parity pair: latent-diffusion's CrossAttention with a padding mask against diffusers'
Attention (same projection names, so the mapping is inferred). Random weights, fp32."""

import torch
from diffusers.models.attention_processor import Attention
from torch import nn


class Reference(nn.Module):
    def __init__(self):
        super().__init__()
        from ldm.modules.attention import CrossAttention

        self.attn = CrossAttention(query_dim=32, context_dim=24, heads=2, dim_head=16)

    def forward(self, x, context, mask):
        return self.attn(x, context=context, mask=mask)


class Candidate(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention(query_dim=32, cross_attention_dim=24, heads=2, dim_head=16)

    def forward(self, hidden_states, encoder_hidden_states, encoder_attention_mask=None):
        return self.attn(hidden_states, encoder_hidden_states=encoder_hidden_states, attention_mask=encoder_attention_mask)


def reference():
    model = Reference()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


def candidate():
    return Candidate()


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 6, 32, generator=g)
    context = torch.randn(2, 7, 24, generator=g)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 4:] = False  # padding in the first sample
    mask[1, 6:] = False
    return {
        "reference": {"x": x, "context": context, "mask": mask},
        "candidate": {"hidden_states": x, "encoder_hidden_states": context, "encoder_attention_mask": mask},
    }
