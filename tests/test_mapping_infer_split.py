"""A fused qkv in the reference against separate to_q / to_k / to_v in the candidate: inference
splits the rows in the order the candidate runs them, parity confirms it, and the written
_weight_mapping.py converts the checkpoint the same way."""

import json
import sys

import torch
from conftest import EXAMPLE, integrate
from safetensors.torch import load_file
from torch import nn

from sandbox.mapping_infer import infer_mapping

sys.path.insert(0, str(EXAMPLE))
import tiny_dit  # noqa: E402


class SplitAttention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=True):
        super().__init__()
        self.num_heads = num_heads
        self.to_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.to_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (layer(x).unflatten(2, (self.num_heads, -1)).transpose(1, 2) for layer in (self.to_q, self.to_k, self.to_v))
        freqs = tiny_dit.precompute_freqs_cis(q.shape[-1], n)
        q, k = tiny_dit.apply_rotary_emb(q, freqs), tiny_dit.apply_rotary_emb(k, freqs)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return self.proj(x)


def models():
    config = {k: v for k, v in json.loads((EXAMPLE / "config.json").read_text()).items() if k not in ("architectures", "model_type")}
    reference = tiny_dit.TinyDiT(**config)
    reference.load_state_dict(load_file(str(EXAMPLE / "model.safetensors")))
    candidate = tiny_dit.TinyDiT(**config)
    for block in candidate.blocks:
        block.attn = SplitAttention(config["hidden_size"], config["num_heads"])
    g = torch.Generator().manual_seed(0)
    kwargs = {"x": torch.randn(2, 4, 16, 16, generator=g), "t": torch.rand(2, generator=g) * 1000, "y": torch.randint(0, 10, (2,), generator=g)}
    return reference.eval(), candidate.eval(), kwargs


def test_fused_qkv_is_split_in_run_order_and_reproduces_the_reference():
    reference, candidate, kwargs = models()
    mapping = infer_mapping(reference, candidate, kwargs, kwargs)
    assert mapping.unmatched_reference == [] and mapping.unmatched_candidate == []
    assert mapping.pairs["blocks.0.attn.to_k.weight"] == "blocks.0.attn.qkv.weight"
    assert mapping.rows["blocks.0.attn.to_k.weight"] == (64, 128)
    candidate.load_state_dict(mapping.apply(reference.state_dict()))
    with torch.no_grad():
        assert (reference(**kwargs) - candidate(**kwargs)).abs().max() < 1e-5


def test_written_mapping_splits_the_checkpoint(tmp_path):
    reference, candidate, kwargs = models()
    mapping = infer_mapping(reference, candidate, kwargs, kwargs)
    (tmp_path / "_weight_mapping.py").write_text(mapping.to_module_source("split attention"))
    proc = integrate("convert", str(EXAMPLE / "model.safetensors"), "--mapping", "_weight_mapping.py", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    converted = load_file(str(tmp_path / "out" / "diffusion_pytorch_model.safetensors"))
    assert converted.keys() == candidate.state_dict().keys()
    candidate.load_state_dict(converted)
    with torch.no_grad():
        assert (reference(**kwargs) - candidate(**kwargs)).abs().max() < 1e-5
