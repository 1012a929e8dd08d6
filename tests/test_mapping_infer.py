"""Mapping inference on real pairs: the original latent-diffusion VAE and UNet against diffusers'
AutoencoderKL and UNet2DConditionModel. With no hand-written convert, the inferred mapping gives
parity, and it agrees key for key with the mapping diffusers ships in its single-file loader."""

import json
import sys
from pathlib import Path

import pytest
import torch

from sandbox.mapping_infer import infer_mapping
from sandbox.parity import run_parity_in_process as run_parity

pytest.importorskip("ldm.modules.diffusionmodules.openaimodel", reason="install with: pip install --no-deps stable-diffusion-sdkit==2.1.5")
PAIRS = Path(__file__).resolve().parent / "pairs"
sys.path.insert(0, str(PAIRS))


def diffusers_mapping(spec, reference) -> dict[str, str]:
    """diffusers' own mapping, read by running its convert function on marker tensors."""
    keys = list(reference.state_dict())
    markers = {k: torch.full(v.shape, float(i)) for i, (k, v) in enumerate(reference.state_dict().items())}
    return {ck: keys[int(v.flatten()[0])] for ck, v in spec.convert(markers).items()}


@pytest.mark.parametrize("name, reshapes", [("ldm_vae_spec", 8), ("ldm_unet_spec", 0)])
def test_inferred_mapping_agrees_with_diffusers(name, reshapes):
    spec = __import__(name)
    reference, candidate = spec.reference(), spec.candidate()
    inputs = spec.inputs(0)
    mapping = infer_mapping(reference, candidate, inputs["reference"], inputs["candidate"])
    assert mapping.unmatched_reference == [] and mapping.unmatched_candidate == []
    assert mapping.pairs == diffusers_mapping(spec, reference)
    assert len(mapping.reshape) == reshapes  # the VAE's 1x1-conv attention projections


@pytest.mark.parametrize("name", ["ldm_vae_spec", "ldm_unet_spec"])
def test_parity_without_a_hand_written_convert(tmp_path, name):
    spec = tmp_path / "spec.py"
    spec.write_text(f"import sys\nsys.path.insert(0, {str(PAIRS)!r})\nfrom {name} import reference, candidate, inputs\n")
    report = run_parity(spec)
    assert report["passed"], report["problems"]
    assert report["mapping"]["source"] == "inferred"
    assert report["mapping"]["unmatched_reference"] == 0 and report["mapping"]["unmatched_candidate"] == 0


def test_written_mapping_converts_a_real_checkpoint(tmp_path):
    """The inferred mapping, written as _weight_mapping.py, converts an ldm VAE checkpoint that
    diffusers' AutoencoderKL then loads and runs identically to the reference."""
    import ldm_vae_spec as spec
    from conftest import integrate
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    reference, candidate = spec.reference(), spec.candidate()
    inputs = spec.inputs(0)
    mapping = infer_mapping(reference, candidate, inputs["reference"], inputs["candidate"])
    (tmp_path / "_weight_mapping.py").write_text(mapping.to_module_source("AutoencoderKL"))
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "ldm_vae.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(dict(candidate.config)))
    proc = integrate("convert", "ldm_vae.safetensors", "--mapping", "_weight_mapping.py", "--out", "vae", "--config", "config.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    port = AutoencoderKL.from_pretrained(str(tmp_path / "vae")).eval()
    with torch.no_grad():
        a = reference.eval()(**inputs["reference"])
        b = port(**inputs["candidate"]).sample
    assert (a - b).abs().max() < 1e-4
