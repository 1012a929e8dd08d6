"""Config vocabulary codemod: renames by scope, the exact heads x per-head split, the cases where
it must not rename, and the recorded conversion of a reference config (also through
`integrate convert --config`)."""

import json

import pytest
import torch
from conventions_sources import TOY, TOY_CONFIG, load, parse, toy_inputs, toy_target
from safetensors.torch import save_file

from agent.porting.conventions.config_names import config_vocabulary
from sandbox.config_renames import config_source, rename_config
from sandbox.convert import convert
from sandbox.mapping import match_by_name


def _rename(src, **target):
    module, report = config_vocabulary(parse(src), toy_target(**target))
    return module.code, report


def test_toy_config_renamed_and_equal_model():
    code, report = _rename(TOY)
    conv = report.data["conversion"]
    assert conv["renames"] == {"input_size": "sample_size", "depth": "num_layers", "num_heads": "num_attention_heads",
                               "num_classes": "num_embeds_ada_norm"}
    assert conv["per_head"] == {"hidden_size": ["attention_head_dim", "num_heads"]}
    assert report.data["candidate_config"] == {"sample_size": 8, "in_channels": 4, "num_layers": 2, "num_attention_heads": 4,
                                               "num_embeds_ada_norm": 10, "attention_head_dim": 8}
    assert "hidden_size = num_attention_heads * attention_head_dim" in code
    assert "self.depth = num_layers" in code  # the attribute keeps its name: module names and weights do not move
    before, after = load(TOY).ToyModel(**TOY_CONFIG), load(code).ToyModel(**report.data["candidate_config"])
    after.load_state_dict(before.state_dict())
    with torch.no_grad():
        assert torch.equal(before(**toy_inputs()), after(**toy_inputs()))
    assert after.config["num_layers"] == 2 and "depth" not in after.config


def test_keywords_attributes_and_inner_scopes_keep_their_names():
    src = '''
    class ToyModel:
        def __init__(self, depth=2, num_heads=4):
            self.depth = depth
            self.blocks = [make(depth=depth, heads=num_heads) for _ in range(depth)]

            def inner(depth):
                return depth + 1

            self.inner = inner
            self.f = lambda: num_heads
    '''
    code, report = _rename(src, inputs=[])
    assert "self.depth = num_layers" in code
    assert "make(depth=num_layers, heads=num_attention_heads) for _ in range(num_layers)" in code
    assert "def inner(depth):\n            return depth + 1" in code  # its own variable
    assert "lambda: num_attention_heads" in code


@pytest.mark.parametrize("src, target, reason", [
    # a UNet's `depth` is not diffusers' num_layers (that name is only used by transformers)
    ("class ToyModel:\n    def __init__(self, depth=2):\n        self.d = depth\n", {"family": "unets"}, None),
    # num_classes -> num_embeds_ada_norm is DiT's use: only when forward takes class labels
    ("class ToyModel:\n    def __init__(self, num_classes=10):\n        self.n = num_classes\n    def forward(self, x):\n        return x\n",
     {"inputs": [{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}]}, "class labels"),
    # the diffusers name is already an argument
    ("class ToyModel:\n    def __init__(self, depth=2, num_layers=3):\n        self.d = depth + num_layers\n", {}, "already has"),
    # the body already uses the new name for something else
    ("class ToyModel:\n    def __init__(self, depth=2):\n        num_layers = 5\n        self.d = depth + num_layers\n", {}, "already used"),
])
def test_renames_that_must_not_happen(src, target, reason):
    code, report = _rename(src, **target)
    assert "num_layers" not in code.replace("num_layers = 5", "").replace("num_layers=3", "").replace("+ num_layers", "")
    assert "num_embeds_ada_norm" not in code
    if reason:
        assert any(reason in s["reason"] for s in report.skipped), report.skipped


def test_width_split_only_when_exact():
    src = "class ToyModel:\n    def __init__(self, hidden_size=30, num_heads=4):\n        self.w = hidden_size\n"
    code, report = _rename(src, config={"hidden_size": 30, "num_heads": 4}, inputs=[])
    assert "hidden_size=30" in code and "attention_head_dim" not in code
    assert any("not a whole multiple" in s["reason"] for s in report.skipped)
    assert "num_attention_heads" in code  # the other renames still happen

    src = "class ToyModel:\n    def __init__(self, hidden_size=32, num_heads=4):\n        self.w = hidden_size\n"
    code, report = _rename(src, config={"hidden_size": 30, "num_heads": 4}, inputs=[])
    assert "attention_head_dim" not in code  # the defaults divide, this run's config does not


def test_width_and_per_head_never_both():
    src = "class ToyModel:\n    def __init__(self, hidden_size=32, num_heads=4, head_dim=8):\n        self.w = hidden_size * head_dim\n"
    code, report = _rename(src, config={"hidden_size": 32, "num_heads": 4, "head_dim": 8}, inputs=[])
    assert "hidden_size=32" in code and "attention_head_dim=8" in code
    assert any("already takes a per-head size" in s["reason"] for s in report.skipped)


def test_rename_config_fills_defaults_and_refuses_inexact_widths():
    conv = {"renames": {"depth": "num_layers", "num_heads": "num_attention_heads"},
            "per_head": {"hidden_size": ("attention_head_dim", "num_heads")}, "defaults": {"hidden_size": 64, "num_heads": 4}}
    args = (conv["renames"], conv["per_head"], conv["defaults"])
    assert rename_config({"depth": 3, "num_heads": 8}, *args) == {"num_layers": 3, "num_attention_heads": 8, "attention_head_dim": 8}
    assert rename_config({"hidden_size": 128}, *args) == {"attention_head_dim": 32, "num_attention_heads": 4}
    assert rename_config({"architectures": ["X"], "depth": 1}, *args, ("architectures",)) == {"num_layers": 1, "attention_head_dim": 16, "num_attention_heads": 4}
    with pytest.raises(ValueError, match="not a multiple"):
        rename_config({"hidden_size": 30}, *args)
    namespace: dict = {}
    exec(config_source({**conv, "drop": ("architectures",)}), namespace)
    assert namespace["convert_config"]({"architectures": ["X"], "hidden_size": 96, "num_heads": 3}) == {"attention_head_dim": 32, "num_attention_heads": 3}


def test_weight_mapping_converts_a_reference_config_json(tmp_path):
    """The generated _weight_mapping.py carries convert_config; the converter applies it to --config."""
    weights = {"blocks.0.w": torch.ones(2, 2)}
    save_file(weights, tmp_path / "model.safetensors")
    mapping = match_by_name({k: tuple(v.shape) for k, v in weights.items()}, {k: tuple(v.shape) for k, v in weights.items()})
    conv = {"renames": {"depth": "num_layers", "num_heads": "num_attention_heads"}, "per_head": {"hidden_size": ["attention_head_dim", "num_heads"]},
            "defaults": {"hidden_size": 64, "num_heads": 4}, "drop": ["architectures"]}
    (tmp_path / "_weight_mapping.py").write_text(mapping.to_module_source("ToyModel", conv))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["Toy"], "depth": 3, "hidden_size": 64, "num_heads": 8}))
    convert([tmp_path / "model.safetensors"], tmp_path / "_weight_mapping.py", tmp_path / "out", config=tmp_path / "config.json")
    assert json.loads((tmp_path / "out" / "config.json").read_text()) == {"num_layers": 3, "attention_head_dim": 8, "num_attention_heads": 8}
    plain = match_by_name({"w": (1,)}, {"w": (1,)}).to_module_source("ToyModel")
    assert "convert_config" not in plain  # nothing renamed: the mapping file is as before
