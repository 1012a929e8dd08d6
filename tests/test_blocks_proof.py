"""The proof job on planted reference modules, in the sandbox: what matches a diffusers block
exactly is accepted with its settings; a near miss (the same formula written in another order,
off by more than the tolerance) stays custom with the closest block and the measured difference."""

import pytest
from block_proofs import prove

PLANTED = '''
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class DiTTimestep(nn.Module):
    """DiT's: cos first, frequencies over `half`."""

    def __init__(self, hidden_size, frequency_embedding_size=64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))
        self.frequency_embedding_size = frequency_embedding_size

    def forward(self, t):
        half = self.frequency_embedding_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class SinusoidalPosEmb(nn.Module):
    """sin first, frequencies over `half - 1`: diffusers' Timesteps(flip_sin_to_cos=False,
    downscale_freq_shift=1), but the exponent is scaled before the multiplication."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        step = math.log(10000) / (half - 1)
        emb = t[:, None] * torch.exp(torch.arange(half) * -step)[None, :]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)


class SwiGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class CrossAttention(nn.Module):
    def __init__(self, query_dim, context_dim=None, heads=4, dim_head=8):
        super().__init__()
        inner = heads * dim_head
        context_dim = context_dim or query_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        q, k, v = (f(y).unflatten(-1, (self.heads, -1)).transpose(1, 2) for f, y in ((self.to_q, x), (self.to_k, context), (self.to_v, context)))
        attn = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).flatten(2))


class PatchEmbed(nn.Module):
    def __init__(self, img_size=8, patch_size=2, in_chans=4, embed_dim=32):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Model(nn.Module):
    def __init__(self, dim=32, context_dim=24):
        super().__init__()
        self.patch = PatchEmbed(embed_dim=dim)
        self.t_embedder = DiTTimestep(dim)
        self.near = SinusoidalPosEmb(256)
        self.near_proj = nn.Linear(256, dim)
        self.self_attn = CrossAttention(dim, heads=4, dim_head=dim // 4)
        self.cross_attn = CrossAttention(dim, context_dim, heads=4, dim_head=dim // 4)
        self.norm = RMSNorm(dim)
        self.ff = SwiGLU(dim, dim * 2)

    def forward(self, x, t, context):
        h = self.patch(x) + (self.t_embedder(t) + self.near_proj(self.near(t)))[:, None]
        h = h + self.self_attn(self.norm(h))
        h = h + self.cross_attn(h, context=context)
        return h + self.ff(self.norm(h))
'''

INPUTS = """
def planted_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 4, 8, 8, generator=g), "t": torch.rand(2, generator=g) * 1000, "context": torch.randn(2, 5, 24, generator=g)}
"""


@pytest.fixture(scope="module")
def proof(tmp_path_factory):
    return prove(tmp_path_factory, PLANTED, "Model", INPUTS)


def test_exact_matches_are_accepted_with_their_settings(proof):
    t = proof["DiTTimestep"]
    assert t.family == "timestep-embedding" and t.max_abs <= 1e-5
    assert t.choice["flip_sin_to_cos"] is True and t.choice["downscale_freq_shift"] == 0
    assert t.exprs == {"in_channels": "{frequency_embedding_size}", "time_embed_dim": "{hidden_size}"}

    ff = proof["SwiGLU"]  # w1 and w3 fused into one projection by the mapping engine, in the order that reproduces it
    assert ff.family == "feed-forward" and ff.choice["activation_fn"] == "swiglu" and ff.choice["bias"] is False
    assert ff.exprs["inner_dim"] == "{hidden}"

    norm = proof["RMSNorm"]
    assert norm.block == "RMSNorm" and norm.exprs["eps"] == "{eps}"

    attn = proof["CrossAttention"]  # both instances: one self-attention, one over a context passed by keyword
    assert attn.block == "Attention" and attn.choice["context_pos"] == 1 and attn.choice["rotary"] == "none"
    assert attn.exprs["cross_attention_dim"] == "{context_dim}" and attn.exprs["heads"] == "{heads}"
    assert "encoder_hidden_states={1}" in attn.code.call

    patch = proof["PatchEmbed"]
    assert patch.block == "PatchEmbed" and patch.exprs["patch_size"] == "{patch_size}" and patch.exprs["height"] == "{img_size}"


def test_a_near_miss_stays_custom_with_the_measured_difference(proof):
    near = proof["SinusoidalPosEmb"]
    assert not near.proven
    assert near.closest == "Timesteps"
    assert "flip_sin_to_cos=False" in near.reason and "downscale_freq_shift=1" in near.reason
    measured = float(near.reason.rsplit("max abs ", 1)[1])
    assert 1e-5 < measured < 1e-2  # the same formula, off by more than the tolerance: measured, not guessed
