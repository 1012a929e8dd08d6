"""What names, shapes and run order leave open is decided by running the layers: q/k/v row
orders, shift/scale halves (against diffusers' own AdaLayerNormContinuous and its conversion
helper), split-to-fused stacking order, and tied weights saved once."""

import sys

import pytest
import torch
from conftest import EXAMPLE
from diffusers.loaders.single_file_utils import swap_scale_shift
from diffusers.models.normalization import AdaLayerNormContinuous
from safetensors.torch import load_file, save_file, save_model
from torch import nn

from sandbox.convert import convert
from sandbox.mapping import match_by_name
from sandbox.mapping_infer import infer_mapping, use_checkpoint_names
from sandbox.parity.runside.infer import infer_for_spec

sys.path.insert(0, str(EXAMPLE))
import tiny_dit  # noqa: E402

DIM, HEADS = 32, 4


def _rope_attention(q, k, v, proj):
    freqs = tiny_dit.precompute_freqs_cis(q.shape[-1], q.shape[2])
    q, k = tiny_dit.apply_rotary_emb(q, freqs), tiny_dit.apply_rotary_emb(k, freqs)
    return proj(torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2))


class SplitAttention(nn.Module):
    """to_q/to_k/to_v, run in `order` (a port may compute k before q)."""

    def __init__(self, order=("q", "k", "v")):
        super().__init__()
        self.order = order
        self.to_q, self.to_k, self.to_v = (nn.Linear(DIM, DIM) for _ in range(3))
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        out = {name: getattr(self, f"to_{name}")(x).unflatten(2, (HEADS, -1)).transpose(1, 2) for name in self.order}
        return _rope_attention(out["q"], out["k"], out["v"], self.proj)


class FusedAttention(nn.Module):
    """One fused projection whose rows are stacked in `layout` order."""

    def __init__(self, layout=("q", "k", "v")):
        super().__init__()
        self.layout = layout
        self.to_qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x):
        parts = dict(zip(self.layout, self.to_qkv(x).unflatten(2, (3, HEADS, -1)).permute(2, 0, 3, 1, 4), strict=True))
        return _rope_attention(parts["q"], parts["k"], parts["v"], self.proj)


def _randomise(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def _inputs(**shapes):
    g = torch.Generator().manual_seed(1)
    return {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}


def _reproduces(reference, candidate, mapping, kwargs):
    candidate.load_state_dict(mapping.apply(reference.state_dict()))
    with torch.no_grad():
        return (reference(**kwargs) - candidate(**kwargs)).abs().max().item() < 1e-5


def _resolved(reference, candidate, kwargs):
    inputs = {"reference": kwargs, "candidate": kwargs}
    by_name = match_by_name(reference.state_dict(), candidate.state_dict())  # what names alone give
    return infer_for_spec(reference, candidate, inputs, by_name)


def test_qkv_rows_follow_the_computation_not_the_run_order():
    reference = _randomise(tiny_dit.Attention(DIM, num_heads=HEADS))
    candidate = SplitAttention(order=("k", "q", "v")).eval()
    kwargs = _inputs(x=(2, 6, DIM))
    naive = infer_mapping(reference, candidate, kwargs, kwargs)
    assert naive.rows["to_k.weight"] == (0, DIM)  # run order alone gets it wrong
    assert not _reproduces(reference, candidate, naive, kwargs)

    mapping = _resolved(reference, candidate, kwargs)
    assert mapping.rows["to_q.weight"] == (0, DIM) and mapping.rows["to_k.weight"] == (DIM, 2 * DIM)
    assert mapping.rows["to_k.bias"] == (DIM, 2 * DIM) and mapping.rows["to_v.weight"] == (2 * DIM, 3 * DIM)
    assert mapping.decisions and not mapping.unresolved
    assert _reproduces(reference, candidate, mapping, kwargs)


class DiffusersFinalLayer(nn.Module):
    """The end of a diffusers DiT: AdaLayerNormContinuous (scale, shift order) and proj_out."""

    def __init__(self, hidden, patch, out_channels):
        super().__init__()
        self.norm_out = AdaLayerNormContinuous(hidden, hidden, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(hidden, patch * patch * out_channels)

    def forward(self, x, c):
        return self.proj_out(self.norm_out(x, c))


def test_shift_scale_halves_swapped_like_diffusers_swap_scale_shift(tmp_path):
    reference = _randomise(tiny_dit.FinalLayer(DIM, 2, 4))
    candidate = DiffusersFinalLayer(DIM, 2, 4).eval()
    kwargs = _inputs(x=(2, 6, DIM), c=(2, DIM))
    assert not _reproduces(reference, candidate, infer_mapping(reference, candidate, kwargs, kwargs), kwargs)

    mapping = _resolved(reference, candidate, kwargs)
    assert mapping.chunk_order == {"norm_out.linear.weight": (2, (1, 0)), "norm_out.linear.bias": (2, (1, 0))}
    assert _reproduces(reference, candidate, mapping, kwargs)
    # the same tensor diffusers' own conversion helper makes
    ref_weight = reference.state_dict()["adaLN_modulation.1.weight"]
    assert torch.equal(mapping.tensor_for("norm_out.linear.weight", reference.state_dict().__getitem__), swap_scale_shift(ref_weight, 0))

    # the written _weight_mapping.py converts a checkpoint the same way, without this tool's code
    (tmp_path / "_weight_mapping.py").write_text(mapping.to_module_source("DiffusersFinalLayer"))
    save_file(reference.state_dict(), tmp_path / "ref.safetensors")
    convert([tmp_path / "ref.safetensors"], tmp_path / "_weight_mapping.py", tmp_path / "out")
    candidate.load_state_dict(load_file(tmp_path / "out" / "diffusion_pytorch_model.safetensors"))
    with torch.no_grad():
        assert torch.allclose(reference(**kwargs), candidate(**kwargs), atol=1e-6)


@pytest.mark.parametrize("layout", [("q", "k", "v"), ("k", "v", "q")])
def test_split_reference_fused_in_the_order_that_reproduces_it(tmp_path, layout):
    reference = _randomise(SplitAttention())
    candidate = FusedAttention(layout).eval()
    kwargs = _inputs(x=(2, 6, DIM))
    mapping = _resolved(reference, candidate, kwargs)
    expected = [f"to_{name}.weight" for name in layout]
    assert mapping.fused["to_qkv.weight"] == expected
    assert not mapping.unmatched_reference and not mapping.unresolved
    assert _reproduces(reference, candidate, mapping, kwargs)
    assert bool(mapping.decisions) == (layout != ("q", "k", "v"))  # run order was right only for q, k, v

    (tmp_path / "_weight_mapping.py").write_text(mapping.to_module_source("FusedAttention"))
    save_file(reference.state_dict(), tmp_path / "ref.safetensors")
    convert([tmp_path / "ref.safetensors"], tmp_path / "_weight_mapping.py", tmp_path / "out")
    converted = load_file(tmp_path / "out" / "diffusion_pytorch_model.safetensors")
    assert set(converted) == {"to_qkv.weight", "to_qkv.bias", "proj.weight", "proj.bias"}
    candidate.load_state_dict(converted)
    with torch.no_grad():
        assert torch.allclose(reference(**kwargs), candidate(**kwargs), atol=1e-6)


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, DIM)
        self.mix = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, 50, bias=False)
        self.head.weight = self.embed.weight  # tied

    def forward(self, ids):
        return self.head(torch.tanh(self.mix(self.embed(ids))))


class UntiedPort(nn.Module):
    def __init__(self):
        super().__init__()
        self.token_embedding = nn.Embedding(50, DIM)
        self.proj_in = nn.Linear(DIM, DIM)
        self.proj_out = nn.Linear(DIM, 50, bias=False)

    def forward(self, ids):
        return self.proj_out(torch.tanh(self.proj_in(self.token_embedding(ids))))


def test_tied_weights_saved_once_feed_both_untied_tensors(tmp_path):
    reference = _randomise(TiedLM())
    candidate = UntiedPort().eval()
    kwargs = {"ids": torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))}
    mapping = infer_mapping(reference, candidate, kwargs, kwargs)
    assert not mapping.unmatched_candidate and not mapping.unmatched_reference
    assert _reproduces(reference, candidate, mapping, kwargs)

    save_model(reference, str(tmp_path / "ref.safetensors"))  # deduplicates the tied pair: one name is kept
    present = set(load_file(tmp_path / "ref.safetensors"))
    assert len(present) == 3
    use_checkpoint_names(mapping, reference, present)
    source = mapping.to_module_source("UntiedPort")
    assert "COPIES = {\n    " in source
    (tmp_path / "_weight_mapping.py").write_text(source)
    convert([tmp_path / "ref.safetensors"], tmp_path / "_weight_mapping.py", tmp_path / "out")
    converted = load_file(tmp_path / "out" / "diffusion_pytorch_model.safetensors")
    assert set(converted) == set(candidate.state_dict())
    assert torch.equal(converted["proj_out.weight"], converted["token_embedding.weight"])
    candidate.load_state_dict(converted)
    with torch.no_grad():
        assert torch.allclose(reference(**kwargs), candidate(**kwargs), atol=1e-6)


def test_what_no_option_fixes_is_listed_not_guessed():
    reference = _randomise(tiny_dit.FinalLayer(DIM, 2, 4))
    candidate = DiffusersFinalLayer(DIM, 2, 4).eval()
    candidate.norm_out.norm.eps = 0.5  # a real numeric difference, not a mapping ambiguity
    kwargs = _inputs(x=(2, 6, DIM), c=(2, DIM))
    mapping = _resolved(reference, candidate, kwargs)
    assert mapping.unresolved and "diverges from the reference" in mapping.unresolved[0]
