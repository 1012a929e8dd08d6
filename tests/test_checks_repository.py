"""Repository rules, --fix and --changed-only on a git checkout built from the installed diffusers."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import integrate

from agent.checks import check_paths

NEW_MODEL = '''
import torch
from torch import nn

from ...configuration_utils import ConfigMixin, register_to_config
from ..modeling_utils import ModelMixin


# Copied from diffusers.models.embeddings.get_timestep_embedding
def get_timestep_embedding(timesteps, embedding_dim):
    return timesteps  # drifted: the source is much longer


class NewToyModel(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 4):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        return self.proj(x)
'''

NEW_PIPELINE = '''
import torch

from .pipeline_utils import DiffusionPipeline


class NewToyPipeline(DiffusionPipeline):
    def __call__(self, prompt: str):
        return prompt
'''


def _json(proc):
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def _imports(checkout: Path, script: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(checkout / "src"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=checkout)


def test_repository_rules_fire_and_fix(tmp_path, diffusers_checkout):
    src = diffusers_checkout / "src" / "diffusers"
    model = src / "models" / "transformers" / "transformer_new_toy.py"
    model.write_text(NEW_MODEL)
    pipeline = src / "pipelines" / "new_toy_pipeline.py"
    pipeline.write_text(NEW_PIPELINE)

    findings = _json(integrate("check", str(model), str(pipeline), "--format", "json", "--no-cache", cwd=tmp_path))
    rules = {(f["rule"], f["path"].split("/")[-1]) for f in findings}
    assert ("R001", "transformer_new_toy.py") in rules  # not registered
    assert ("R002", "transformer_new_toy.py") in rules  # drifted copy
    assert ("P001", "new_toy_pipeline.py") in rules  # no @torch.no_grad()
    r001 = next(f for f in findings if f["rule"] == "R001" and "NewToyModel" in f["message"])
    for layer in ("models/transformers/__init__.py", "models/__init__.py", "diffusers/__init__.py"):
        assert layer in r001["message"]

    fixed = integrate("check", str(model), str(pipeline), "--fix", "--format", "json", "--no-cache", cwd=tmp_path)
    left = {(f["rule"], f["path"].split("/")[-1]) for f in _json(fixed)}
    assert not left & {("R001", "transformer_new_toy.py"), ("R002", "transformer_new_toy.py"), ("P001", "new_toy_pipeline.py")}
    assert ("R001", "new_toy_pipeline.py") in left  # pipelines are reported, not registered by --fix
    assert "fixed" in fixed.stderr
    assert "@torch.no_grad()\n    def __call__" in pipeline.read_text()
    assert "def get_timestep_embedding(\n" in model.read_text() and "drifted" not in model.read_text()
    assert "class NewToyModel(metaclass=DummyObject)" in (src / "utils" / "dummy_pt_objects.py").read_text()

    # the fixed code still imports, from diffusers itself, in a fresh process
    out = _imports(diffusers_checkout, "from diffusers import NewToyModel\nimport diffusers.pipelines.new_toy_pipeline as p\nprint(NewToyModel(dim=4).proj.in_features)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


def test_a_fix_that_would_break_the_code_is_dropped(tmp_path, diffusers_checkout):
    # the copy's module lacks the `math` its source needs: make fix-copies would leave math undefined
    src = diffusers_checkout / "src" / "diffusers"
    model = src / "models" / "transformers" / "transformer_no_math.py"
    model.write_text(
        "import torch\n\n\n# Copied from diffusers.models.embeddings.get_timestep_embedding\n"
        "def get_timestep_embedding(\n    timesteps: torch.Tensor,\n) -> torch.Tensor:\n    return timesteps\n"
    )
    before = model.read_text()
    proc = integrate("check", str(model), "--select", "R002", "--fix", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 1
    assert "fix not applied" in proc.stderr and "F821" in proc.stderr
    assert model.read_text() == before


def test_the_import_gate_runs_the_fixed_module_in_the_sandbox(tmp_path):
    from agent.checks.fix import Candidate, _import_gate

    ok = tmp_path / "ok_module.py"
    ok.write_text("X = 1\n")
    bad = tmp_path / "bad_module.py"
    bad.write_text("X = 1\n")
    candidates = [
        Candidate("P001", ok, {ok: "X = 2\n"}),
        Candidate("P001", bad, {bad: "raise RuntimeError('fails on import')\n"}),
    ]
    reasons = _import_gate(candidates, timeout=300)
    assert reasons[0] == ""
    assert "does not import" in reasons[1] and "fails on import" in reasons[1]


def test_registration_layers_and_dummies(tmp_path, diffusers_checkout):
    src = diffusers_checkout / "src" / "diffusers"
    flux_model = src / "models" / "transformers" / "transformer_flux.py"
    fill = src / "pipelines" / "flux" / "pipeline_flux_fill.py"
    assert check_paths([flux_model, fill], select=["R001"], use_cache=False) == []

    # a model registered in models/ but not at the top level
    top = src / "__init__.py"
    text = top.read_text()
    top.write_text(text.replace('            "FluxTransformer2DModel",\n', "", 1).replace("            FluxTransformer2DModel,\n", "", 1))
    found = check_paths([flux_model], select=["R001"], use_cache=False)
    assert len(found) == 1 and "diffusers/__init__.py" in found[0].message and "models/__init__.py" not in found[0].message
    top.write_text(text)

    # a pipeline registered only in its subpackage
    pipes = src / "pipelines" / "__init__.py"
    ptext = pipes.read_text()
    pipes.write_text(ptext.replace('        "FluxFillPipeline",\n', "", 1).replace("            FluxFillPipeline,\n", "", 1))
    found = check_paths([fill], select=["R001"], use_cache=False)
    assert len(found) == 1 and "pipelines/__init__.py" in found[0].message
    pipes.write_text(ptext)

    # a dummy object missing (R001 at the class, R005 at the top-level __init__)
    dummies = src / "utils" / "dummy_pt_objects.py"
    dtext = dummies.read_text()
    dummies.write_text(dtext.replace("class FluxTransformer2DModel(metaclass", "class FluxTransformer2DModelGone(metaclass", 1))
    assert "dummy objects" in check_paths([flux_model], select=["R001"], use_cache=False)[0].message
    r005 = check_paths([top, dummies], select=["R005"], use_cache=False)
    messages = " ".join(f.message for f in r005)
    assert "FluxTransformer2DModel (torch) has no dummy" in messages and "dummy FluxTransformer2DModelGone" in messages
    dummies.write_text(dtext)

    # the two halves of a subpackage __init__
    flux_init = src / "pipelines" / "flux" / "__init__.py"
    ftext = flux_init.read_text()
    flux_init.write_text(ftext.replace("        from .pipeline_flux_fill import FluxFillPipeline\n", "", 1))
    r004 = check_paths([flux_init], select=["R004"], use_cache=False)
    assert any("FluxFillPipeline is in _import_structure but not imported under TYPE_CHECKING" in f.message for f in r004)


def test_warm_cache_sees_a_registration_fixed_elsewhere(tmp_path, diffusers_checkout, monkeypatch):
    monkeypatch.setenv("INTEGRATE_CACHE_DIR", str(tmp_path / "cache"))
    src = diffusers_checkout / "src" / "diffusers"
    model = src / "models" / "transformers" / "transformer_flux.py"
    top = src / "__init__.py"
    text = top.read_text()
    top.write_text(text.replace('            "FluxTransformer2DModel",\n', "", 1).replace("            FluxTransformer2DModel,\n", "", 1))
    assert check_paths([model], select=["R001"])  # cold: reported
    top.write_text(text)  # the registration is fixed in another file; the model file is untouched
    assert check_paths([model], select=["R001"]) == []  # warm: seen without --no-cache


def test_changed_only(tmp_path, diffusers_checkout):
    src = diffusers_checkout / "src" / "diffusers"
    (src / "models" / "new_file.py").write_text("import einops\n")
    edited = src / "models" / "embeddings.py"
    edited.write_text(edited.read_text() + "\n\nimport einops  # added\n")
    findings = _json(integrate("check", str(src), "--changed-only", "--base-ref", "HEAD", "--format", "json", "--select", "M001", cwd=tmp_path))
    assert sorted({f["path"].split("/")[-1] for f in findings}) == ["embeddings.py", "new_file.py"]
    proc = integrate("check", str(src), "--changed-only", "--base-ref", "no-such-ref", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown --base-ref" in proc.stderr


def test_copied_from_renames_and_a_faithful_copy(tmp_path):
    from agent.checks.copies import apply_renames, source_block
    from agent.checks.tree import installed_root

    assert apply_renames("class FluxAttn: flux = 1", "with Flux->Qwen all-casing") == "class QwenAttn: qwen = 1"
    header, code, _ = source_block(installed_root(), "models.embeddings.get_timestep_embedding")
    copy = tmp_path / "copied_helper.py"
    copy.write_text("import math\nimport torch\n\n\n# Copied from diffusers.models.embeddings.get_timestep_embedding\n" + header + code)
    assert json.loads(integrate("check", str(copy), "--select", "R002", "--format", "json", cwd=tmp_path).stdout) == []
    # code identical to a source that diffusers' copies annotate, without the annotation
    header, code, _ = source_block(installed_root(), "pipelines.stable_diffusion.pipeline_stable_diffusion.retrieve_timesteps")
    copy.write_text("import inspect\nimport torch\n\n\n" + header + code)
    found = json.loads(integrate("check", str(copy), "--select", "R003", "--format", "json", cwd=tmp_path).stdout)
    assert [f["rule"] for f in found] == ["R003"]
