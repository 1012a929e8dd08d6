"""Parity on real third-party code: the original latent-diffusion UNet and KL autoencoder
(stable-diffusion-sdkit's ldm package) against diffusers' classes, through the weight mappings
diffusers ships in its single-file loader. Tiny configs, random weights, fp32 preset."""

from pathlib import Path

import pytest

from sandbox.parity import PRESETS
from sandbox.parity import run_parity_in_process as run_parity

PAIRS = Path(__file__).resolve().parent / "pairs"
ldm = pytest.importorskip("ldm.modules.diffusionmodules.openaimodel", reason="install with: pip install --no-deps stable-diffusion-sdkit==2.1.5")


@pytest.mark.parametrize("spec, source", [
    ("ldm_unet_spec.py", "spec"),  # diffusers' convert_ldm_unet_checkpoint
    ("ldm_vae_spec.py", "spec"),  # diffusers' convert_ldm_vae_checkpoint
    ("ldm_cross_attention_spec.py", "inferred"),  # same parameter names on both sides
])
def test_pair_passes_within_fp32_preset(spec, source):
    report = run_parity(PAIRS / spec)
    assert report["passed"], report["problems"]
    assert report["max_abs_diff"] <= PRESETS["float32"]["max_abs"]
    assert report["cosine"] >= PRESETS["float32"]["cosine"]
    assert report["mapping"]["source"] == source
    assert report["mapping"]["unmatched_reference"] == 0 and report["mapping"]["unmatched_candidate"] == 0
    assert len(report["layers"]) >= 4


def test_pair_catches_a_wrong_mapping(tmp_path):
    spec = tmp_path / "swapped.py"
    spec.write_text(
        f"import sys\nsys.path.insert(0, {str(PAIRS)!r})\nfrom ldm_unet_spec import *\nfrom ldm_unet_spec import convert as _convert\n\n"
        "def convert(sd):\n"
        "    out = _convert(sd)\n"
        "    a = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight'\n"
        "    b = 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight'\n"
        "    out[a], out[b] = out[b], out[a]\n"
        "    return out\n"
    )
    report = run_parity(spec)
    assert not report["passed"]
    assert "attn1" in report["first_divergence"]["candidate_module"]
