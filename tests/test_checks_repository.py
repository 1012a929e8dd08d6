"""Repository rules, --fix and --changed-only on a git checkout built from the installed diffusers."""

import json
import subprocess
import sys

from conftest import integrate

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

    fixed = integrate("check", str(model), str(pipeline), "--fix", "--format", "json", "--no-cache", cwd=tmp_path)
    left = {(f["rule"], f["path"].split("/")[-1]) for f in _json(fixed)}
    assert not left & {("R001", "transformer_new_toy.py"), ("R002", "transformer_new_toy.py"), ("P001", "new_toy_pipeline.py")}
    assert ("R001", "new_toy_pipeline.py") in left  # pipelines are reported, not registered by --fix
    assert "fixed" in fixed.stderr
    assert "@torch.no_grad()\n    def __call__" in pipeline.read_text()
    assert "def get_timestep_embedding(" in model.read_text() and "drifted" not in model.read_text()

    # the fixed code still imports, from diffusers itself
    script = "from diffusers import NewToyModel\nimport diffusers.pipelines.new_toy_pipeline as p\nprint(NewToyModel(dim=4).proj.in_features)"
    env = {"PYTHONPATH": str(diffusers_checkout / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4"


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
    from agent.checks.rules.copied_from import apply_replacements, installed_root, source_of

    assert apply_replacements("class FluxAttn: flux = 1", "Flux->Qwen, all-casing") == "class QwenAttn: qwen = 1"
    original = source_of(installed_root(), "models.embeddings.get_timestep_embedding")
    copy = tmp_path / "copied_helper.py"
    copy.write_text("import math\nimport torch\n\n\n# Copied from diffusers.models.embeddings.get_timestep_embedding\n" + original + "\n")
    assert json.loads(integrate("check", str(copy), "--select", "R002", "--format", "json", cwd=tmp_path).stdout) == []
