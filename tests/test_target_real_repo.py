"""--target against a real clone of diffusers (local only): the stand-ins of the other target tests
are checked against diffusers' own scripts and tester mixins here.

Set INTEGRATE_DIFFUSERS_CLONE to a git repository of huggingface/diffusers (a clone, or the git
directory of one); without it these tests are skipped and say so. Nothing of that clone is part
of this project: the tests clone it into a temporary folder and run its scripts there (in the
sandbox, through agent.repo_checks).
"""

import importlib.util
import os
import subprocess
import sys

import git
import pytest

from agent.diffusers_repo import docs_page, dummies, toctree
from agent.diffusers_repo.model_test import mixin_api, render_diffusers_test, run_diffusers_test
from agent.registration import register_model
from agent.repo_checks import PRE_EXISTING, run_repo_checks
from agent.run_state import Run

CLONE = os.environ.get("INTEGRATE_DIFFUSERS_CLONE")
pytestmark = pytest.mark.skipif(not CLONE, reason="INTEGRATE_DIFFUSERS_CLONE is not set to a clone of huggingface/diffusers")

MODEL = '''import torch
from torch import nn

from ...configuration_utils import ConfigMixin, register_to_config
from ..modeling_outputs import Transformer2DModelOutput
from ..modeling_utils import ModelMixin


class TinyTestTransformer2DModel(ModelMixin, ConfigMixin):
    r"""
    A two-convolution stand-in for a ported model.

    Parameters:
        in_channels (`int`, defaults to 4): Channels of the input.
        hidden (`int`, defaults to 8): Channels inside.
    """

    @register_to_config
    def __init__(self, in_channels: int = 4, hidden: int = 8):
        super().__init__()
        self.proj_in = nn.Conv2d(in_channels, hidden, 1)
        self.time = nn.Linear(1, hidden)
        self.proj_out = nn.Conv2d(hidden, in_channels, 1)

    def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor, return_dict: bool = True):
        """
        Args:
            hidden_states (`torch.Tensor`): The input.
            timestep (`torch.Tensor`): The timesteps.
            return_dict (`bool`, defaults to `True`): Whether to return a `Transformer2DModelOutput`.
        """
        h = self.proj_in(hidden_states) + self.time(timestep[:, None] / 1000)[:, :, None, None]
        out = self.proj_out(torch.tanh(h))
        if not return_dict:
            return (out,)
        return Transformer2DModelOutput(sample=out)
'''
MEASURE = '''
import json, sys, torch
from diffusers.models.transformers.transformer_tiny_test import TinyTestTransformer2DModel
torch.manual_seed(0)
model = TinyTestTransformer2DModel().eval()
model.save_pretrained(sys.argv[1])
g = torch.Generator().manual_seed(3)
inputs = {"hidden_states": torch.randn([2, 4, 8, 8], generator=g), "timestep": torch.rand([2], generator=g) * 1000.0}
with torch.no_grad():
    out = model(**inputs, return_dict=False)[0].flatten()
print(json.dumps([{"shape": [2, 4, 8, 8], "stride": 16, "values": [float(v) for v in out[::16][:32]]}]))
'''
INPUTS = [
    {"name": "hidden_states", "kind": "randn", "shape": [2, 4, 8, 8]},
    {"name": "timestep", "kind": "uniform", "shape": [2], "low": 0.0, "high": 1000.0},
]


@pytest.fixture(scope="module")
def branch(tmp_path_factory):
    """A clone of the real repository with a new model added the way scaffold adds one."""
    root = tmp_path_factory.mktemp("real")
    checkout = root / "diffusers"
    git.Repo.clone_from(CLONE, checkout, shared=True)
    repo = git.Repo(checkout)
    workspace = root / "run" / "workspace"
    repo.git.worktree("add", "-b", "integrate/tiny-test", str(workspace), "HEAD")
    src = workspace / "src"
    (src / "diffusers/models/transformers/transformer_tiny_test.py").write_text(MODEL)
    register_model(src, "transformer_tiny_test", "TinyTestTransformer2DModel", "transformers")
    dummies.regenerate_dummies(src)
    page = docs_page.page_path("transformer_tiny_test")
    (workspace / page).write_text(docs_page.render_page(
        class_name="TinyTestTransformer2DModel", family="transformers", module_name="transformer_tiny_test",
        card=docs_page.CardFacts("TinyTest", None, None), source_name="tiny-test", source_url=None, model_source=MODEL))
    toctree.add_model_page(workspace, "api/models/transformer_tiny_test", "TinyTestTransformer2DModel", "transformers")
    branch_repo = git.Repo(workspace)
    branch_repo.git.add(A=True)
    sha = branch_repo.index.commit("Scaffold TinyTestTransformer2DModel", author=git.Actor("t", "t@e"), committer=git.Actor("t", "t@e")).hexsha
    run = Run.create(root / "runs", {"source": "tiny-test"})
    run.start_stage("scaffold")
    run.finish_stage("scaffold", {"workspace": str(workspace), "commit": sha}, 0.0)
    return run, workspace


def test_real_repo_scripts_pass_on_the_branch(branch):
    run, workspace = branch
    test = workspace / "tests/models/transformers/test_models_transformer_tiny_test.py"
    test.write_text("from diffusers import TinyTestTransformer2DModel  # noqa: F401\n")
    try:
        rows = {r["name"]: r for r in run_repo_checks(run)["checks"]}
    finally:
        test.unlink()
    for name in ("check_dummies", "check_doc_toc", "check_copies", "check_support_list", "check_forward_call_docstrings",
                 "check_test_missing", "ruff check", "ruff format --check"):
        assert rows[name]["status"] == "passed", (name, rows[name]["output_tail"])
    # diffusers' check_repo.py and check_inits.py do not run on diffusers' own main: reported as such
    for name in ("check_repo", "check_inits"):
        assert rows[name]["status"] in ("passed", PRE_EXISTING), (name, rows[name]["output_tail"])


def test_real_check_dummies_flags_a_missing_dummy(branch, tmp_path):
    """Our regeneration is what diffusers' generator wants: undoing it makes the real script fail."""
    _, workspace = branch
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(workspace), str(copy)], check=True)
    pt = copy / "src/diffusers/utils/dummy_pt_objects.py"
    text = pt.read_text()
    start = text.index("\n\nclass TinyTestTransformer2DModel(")
    end = text.index("\n\nclass ", start + 3)
    pt.write_text(text[:start] + text[end:])
    proc = subprocess.run([sys.executable, "utils/check_dummies.py"], cwd=copy, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "src"})
    assert proc.returncode != 0 and "make fix-copies" in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="diffusers' tester mixins import accelerate, not installed here")
def test_generated_test_passes_under_the_real_mixins(branch, tmp_path):
    run, workspace = branch
    checkpoint = tmp_path / "checkpoint"
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(checkpoint)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(workspace / "src")})
    assert proc.returncode == 0, proc.stderr
    import json

    reference = json.loads(proc.stdout.strip().splitlines()[-1])
    test = workspace / "tests/models/transformers/test_models_transformer_tiny_test.py"
    test.write_text(render_diffusers_test(
        class_name="TinyTestTransformer2DModel", api=mixin_api(workspace), config={"in_channels": 4, "hidden": 8},
        inputs=INPUTS, reference_outputs=reference, seed=3, atol=1e-5, parity_command="integrate parity parity_spec.py"))
    try:
        result = run_diffusers_test(test, workspace, checkpoint, tmp_path / "pytest")
    finally:
        test.unlink()
    assert result["failed"] == [] and result["parity_passed"], result["output"]
    assert result["passed"] and result["suite_passed"], {k: v for k, v in result.items() if k not in ("output", "tests", "reasons")}
