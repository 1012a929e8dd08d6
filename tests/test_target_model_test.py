"""--target: the generated model test in diffusers' form (tester mixins + the parity test), run with
pytest in the sandbox under the checkout's tests package (here the stand-ins of
tests/diffusers_standins; tests/test_target_real_repo.py runs it under diffusers' own)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.diffusers_repo.model_test import (
    MixinApi,
    MixinsMissing,
    format_in_checkout,
    mixin_api,
    parse_pytest_report,
    render_diffusers_test,
    run_diffusers_test,
)
from agent.registration import register_model

MODEL = '''
import torch
from torch import nn

from ...configuration_utils import ConfigMixin, register_to_config
from ..modeling_outputs import Transformer2DModelOutput
from ..modeling_utils import ModelMixin


class TinyTestTransformer2DModel(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, in_channels: int = 4, hidden: int = 8):
        super().__init__()
        self.proj_in = nn.Conv2d(in_channels, hidden, 1)
        self.time = nn.Linear(1, hidden)
        self.proj_out = nn.Conv2d(hidden, in_channels, 1)

    def forward(self, hidden_states, timestep, return_dict=True):
        h = self.proj_in(hidden_states) + self.time(timestep[:, None] / 1000)[:, :, None, None]
        out = self.proj_out(torch.tanh(h))
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)
'''
INPUTS = [
    {"name": "hidden_states", "kind": "randn", "shape": [2, 4, 8, 8]},
    {"name": "timestep", "kind": "uniform", "shape": [2], "low": 0.0, "high": 1000.0},
]
# what the reference side of a parity run would have measured: the model's own outputs on the seeded inputs
MEASURE = '''
import json, sys, torch
from diffusers import TinyTestTransformer2DModel
torch.manual_seed(0)
model = TinyTestTransformer2DModel(in_channels=4, hidden=8).eval()
model.save_pretrained(sys.argv[1])
g = torch.Generator().manual_seed(3)
inputs = {"hidden_states": torch.randn([2, 4, 8, 8], generator=g), "timestep": torch.rand([2], generator=g) * 1000.0}
with torch.no_grad():
    out = model(**inputs, return_dict=False)[0].flatten()
print(json.dumps([{"shape": [2, 4, 8, 8], "stride": 16, "values": [float(v) for v in out[::16][:32]]}]))
'''


@pytest.fixture
def checkout_with_model(diffusers_checkout, tmp_path):
    src = diffusers_checkout / "src"
    (src / "diffusers" / "models" / "transformers" / "transformer_tiny_test.py").write_text(MODEL)
    register_model(src, "transformer_tiny_test", "TinyTestTransformer2DModel", "transformers")
    checkpoint = tmp_path / "checkpoint"
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(checkpoint)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return diffusers_checkout, checkpoint, json.loads(proc.stdout.strip().splitlines()[-1])


def _render(checkout: Path, reference, **kw) -> str:
    return render_diffusers_test(class_name="TinyTestTransformer2DModel", api=mixin_api(checkout), config={"in_channels": 4, "hidden": 8},
                                 inputs=INPUTS, reference_outputs=reference, seed=3, atol=1e-5,
                                 parity_command="integrate parity parity_spec.py", **kw)


def test_generated_test_passes_under_the_mixins_and_its_parity_test_has_teeth(checkout_with_model, tmp_path):
    checkout, checkpoint, reference = checkout_with_model
    test_file = checkout / "tests" / "models" / "transformers" / "test_models_transformer_tiny_test.py"
    test_file.write_text(_render(checkout, reference))
    assert format_in_checkout(test_file, checkout) == "formatted"
    text = test_file.read_text()
    assert "from ..testing_utils import (" in text and "class TestTinyTestTransformer2D(TinyTestTransformer2DTesterConfig, ModelTesterMixin):" in text
    assert "\n\n\nenable_full_determinism()" in text  # diffusers' isort: two lines after imports

    result = run_diffusers_test(test_file, checkout, checkpoint, tmp_path / "run1")
    assert result["passed"] and result["suite_passed"] and result["parity_passed"], result["output"]
    passed = {name.split("::", 1)[1] for name, outcome in result["tests"].items() if outcome == "passed"}
    assert {"TestTinyTestTransformer2D::test_from_save_pretrained", "TestTinyTestTransformer2D::test_outputs_equivalence",
            "TestTinyTestTransformer2DParity::test_converted_checkpoint_matches_reference"} <= passed, result["tests"]
    assert result["counts"]["skipped"] >= 1  # the accelerator-only mixins, as in diffusers

    # one reference value off by 1e-3: the parity test fails, and only it
    tampered = [{**reference[0], "values": [reference[0]["values"][0] + 1e-3, *reference[0]["values"][1:]]}]
    test_file.write_text(_render(checkout, tampered))
    result = run_diffusers_test(test_file, checkout, checkpoint, tmp_path / "run2")
    assert not result["passed"] and not result["suite_passed"] and not result["parity_passed"]
    assert result["failed"] == ["tests/models/transformers/test_models_transformer_tiny_test.py::TestTinyTestTransformer2DParity::test_converted_checkpoint_matches_reference"]


def test_a_skipped_parity_test_is_not_a_pass():
    out = ("ERROR    diffusers.models.modeling_utils: a captured log line, not a test\n"
           "=========================== short test summary info ============================\n"
           "PASSED tests/models/x/test_m.py::TestM::test_determinism\n"
           "SKIPPED [1] tests/models/x/test_m.py:80: INTEGRATE_PARITY_CHECKPOINT is not set\n"
           "1 passed, 1 skipped in 1.0s\n")
    report = parse_pytest_report(out, "tests/models/x/test_m.py")
    assert report["counts"] == {"passed": 1, "skipped": 1}
    assert not any("Parity" in name for name in report["tests"])


def test_unittest_form_for_a_checkout_with_test_modeling_common(tmp_path):
    (tmp_path / "tests" / "models").mkdir(parents=True)
    (tmp_path / "tests" / "models" / "test_modeling_common.py").write_text("class ModelTesterMixin:\n    pass\n")
    api = mixin_api(tmp_path)
    assert api == MixinApi("unittest", ("ModelTesterMixin",))
    text = _render(tmp_path, [{"shape": [2, 4, 8, 8], "stride": 16, "values": [0.5]}])
    tree = ast.parse(text)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    tests = classes["TinyTestTransformer2DTests"]
    assert [ast.unparse(b) for b in tests.bases] == ["ModelTesterMixin", "unittest.TestCase"]
    members = {n.name for n in tests.body if isinstance(n, ast.FunctionDef)}
    assert {"dummy_input", "input_shape", "output_shape", "prepare_init_args_and_inputs_for_common", "test_output"} <= members
    assert "from ..test_modeling_common import ModelTesterMixin" in text
    assert "TinyTestTransformer2DParityTests" in classes


def test_hub_checkpoint_adds_a_slow_test(diffusers_checkout):
    text = _render(diffusers_checkout, [{"shape": [2, 4, 8, 8], "stride": 16, "values": [0.5]}],
                   hub_checkpoint={"repo_id": "org/tiny", "subfolder": "transformer"})
    assert "HUB_CHECKPOINT = 'org/tiny'" in text and "@slow\n    def test_hub_checkpoint_matches_reference" in text
    ast.parse(text)


def test_a_checkout_without_tester_mixins_is_named(tmp_path):
    with pytest.raises(MixinsMissing, match="tester mixins"):
        mixin_api(tmp_path)
