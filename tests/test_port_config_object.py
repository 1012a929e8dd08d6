"""A reference whose constructor takes one config object (namespace or dict): the port gets one
named argument per config key, saved by register_to_config, and parity still holds exactly."""

import json

import pytest
from conftest import integrate

SIGNATURE = '''    def __init__(
        self,
        input_size=16,
        patch_size=2,
        in_channels=4,
        hidden_size=64,
        depth=2,
        num_heads=4,
        mlp_ratio=4.0,
        num_classes=10,
        learn_sigma=False,
    ):
        super().__init__()'''

NAMESPACE = '''    def __init__(self, config):
        super().__init__()
        self.config = config
        input_size, patch_size, in_channels = config.input_size, config.patch_size, config.in_channels
        hidden_size, depth, num_heads = config.hidden_size, config.depth, config.num_heads
        mlp_ratio, num_classes, learn_sigma = config.mlp_ratio, config.num_classes, config.learn_sigma'''

MAPPING = '''    def __init__(self, cfg):
        super().__init__()
        input_size, patch_size, in_channels = cfg["input_size"], cfg["patch_size"], cfg["in_channels"]
        hidden_size, depth, num_heads = cfg["hidden_size"], cfg["depth"], cfg["num_heads"]
        mlp_ratio, num_classes, learn_sigma = cfg.get("mlp_ratio", 4.0), cfg["num_classes"], cfg["learn_sigma"]'''


@pytest.mark.parametrize("variant, param, kind", [(NAMESPACE, "config", "namespace"), (MAPPING, "cfg", "mapping")])
def test_config_object_is_flattened(tmp_path, example, variant, param, kind):
    code = example / "tiny_dit.py"
    code.write_text(code.read_text().replace(SIGNATURE, variant))
    proc = integrate(str(example), "--out", "out", "--llm", "none", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["parity"]["passed"] and summary["parity"]["max_abs_diff"] == 0
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    assert run["stages"]["analyze"]["result"]["config_object"]["kind"] == kind
    model = (tmp_path / "out" / "transformer_tiny_dit.py").read_text()
    # the conventions stage renamed the arguments (hidden_size = 4 heads x 16, depth -> num_layers)
    assert "attention_head_dim=16," in model and f"{param} = " in model
    saved = json.loads((tmp_path / "out" / "weights" / "config.json").read_text())
    assert saved["attention_head_dim"] == 16 and saved["num_layers"] == 2  # every key is in the saved config
    if kind == "namespace":
        assert "self.reference_config = config" in model  # ConfigMixin owns self.config
