"""The conventions stage on real third-party code: the original latent-diffusion UNetModel
(stable-diffusion-sdkit's ldm package), ported and then moved into diffusers' conventions with
parity exact. Each group either applies or is left out with the verdict's reason."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conventions_sources import run_until

import sandbox

pytest.importorskip("ldm.modules.diffusionmodules.openaimodel", reason="install with: pip install --no-deps stable-diffusion-sdkit==2.1.5")

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "porter_real_models.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("porter_real_models", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ldm_unet_conventions(tmp_path):
    bench = _benchmark()
    repo, module = bench.ldm_unet(tmp_path)
    made = sandbox.run([sys.executable, "-c", bench.MAKE_WEIGHTS.format(module=module, ignored=bench.IGNORED)], repo,
                       limits=sandbox.Limits(wall_s=300))
    assert made.ok, made.one_line_error()
    run = run_until(repo, tmp_path / "out", tmp_path / "runs", stop="verify")  # through convert: the config.json it writes
    result = run.result("conventions")

    assert result["status"] in ("applied", "partial") and result["parity"]["passed"]
    assert result["parity"]["max_abs_diff"] <= 1e-5
    for attempt in result["attempts"]:
        assert attempt["parity"]["passed"] or attempt["why"]  # anything left out says why
    assert "forward" in result["groups_applied"] and "config" in result["groups_applied"]
    assert result["forward_renames"] == {"x": "sample", "timesteps": "timestep", "context": "encoder_hidden_states", "y": "class_labels"}
    assert result["output_class"] == "UNet2DConditionOutput"
    renames = result["config_renames"]
    assert renames["image_size"] == "sample_size" and renames["num_res_blocks"] == "layers_per_block"
    assert renames["context_dim"] == "cross_attention_dim" and renames["transformer_depth"] == "transformer_layers_per_block"
    assert "num_layers" not in renames.values()  # a UNet: `depth`-style transformer names are not applied
    changes = " ".join(c for group in result["changes"].values() for c in group)
    # the blocks stage put diffusers' FeedForward and GEGLU in place; the reference's BasicTransformerBlock still shadows diffusers'
    assert "class BasicTransformerBlock -> LdmUNetBasicTransformerBlock" in changes and "print call" in changes and "omegaconf" in changes

    grads = result["gradient_checkpointing"]
    if "model class" in result["groups_applied"] and "_supports_gradient_checkpointing" in result["flags"]:
        assert grads["proven"] and grads["checkpointed_calls"] > 0 and grads["max_abs_diff"] <= 1e-5
        assert grads["block_parameters_with_gradient"] > 0 and grads["loss_off"] != 0  # not vacuous: the zero-initialised output layer is randomised
    else:
        assert grads["reason"]
    assert result["flags"].get("_no_split_modules") == "['TimestepEmbedSequential']"

    assert result["flags"].get("_skip_layerwise_casting_patterns") == "['time_embed']"
    port = Path(run.result("port")["model_file"]).read_text()
    assert "def forward(\n        self,\n        sample: torch.Tensor," in port
    assert "return UNet2DConditionOutput(sample=output)" in port
    assert "print(" not in port and "omegaconf" not in port
    assert "\n    Parameters:\n        sample_size (`int`" in port and "class LdmUNetBasicTransformerBlock(" in port

    # the reference's own config.json converts through the shipped _weight_mapping.py to what the port was built from,
    # and that is what the converted folder holds
    out = Path(run.result("scaffold")["workspace"])
    built_from = json.loads(json.dumps(result["candidate_config"]))  # as JSON holds it (tuples are lists)
    saved = json.loads((out / "weights" / "config.json").read_text())  # every constructor argument, defaults too
    assert {k: saved[k] for k in built_from} == built_from
    script = (f"import importlib.util, json\n"
              f"spec = importlib.util.spec_from_file_location('m', {str(out / '_weight_mapping.py')!r})\n"
              f"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              f"print(json.dumps(m.convert_config(json.load(open({str(repo / 'config.json')!r})))))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == built_from
