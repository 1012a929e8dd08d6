"""M012-M017 (issue 14.7): the forward/output contract and the model-class conventions, on small
model files written the way an unconverted port and a converted one look, plus the diffusers
forms that must stay clean (aliases, helpers, containers of models, deprecation shims)."""

import textwrap
from pathlib import Path

import pytest

from agent.checks.engine import check_paths

NEW = ["M012", "M013", "M014", "M015", "M016", "M017"]

HEADER = """
import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin


class Block(nn.Module):
    def forward(self, x, c):
        return x + c
"""

UNCONVERTED = HEADER + """

class Attention(nn.Module):
    pass


class TinyModel(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, width=8, depth=2):
        super().__init__()
        self.blocks = nn.ModuleList([Block() for _ in range(depth)])

    def forward(self, x, t, y):
        for block in self.blocks:
            x = block(x, t)
        return x
"""

CONVERTED = HEADER + '''

class TinyAttention(nn.Module):
    pass


class TinyModel(ModelMixin, ConfigMixin):
    """
    A tiny transformer.

    Parameters:
        width (`int`, defaults to `8`): Model width.
        depth (`int`, defaults to `2`): Number of blocks.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, width=8, depth=2):
        super().__init__()
        self.gradient_checkpointing = False
        self.blocks = nn.ModuleList([Block() for _ in range(depth)])

    def forward(self, hidden_states, timestep, class_labels, return_dict: bool = True):
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(block, hidden_states, timestep)
            else:
                hidden_states = block(hidden_states, timestep)
        if not return_dict:
            return (hidden_states,)
        return Transformer2DModelOutput(sample=hidden_states)
'''


def _check(tmp_path, source, name="transformer_tiny.py", select=NEW):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return check_paths([path], select=select, use_cache=False, jobs=1)


def _rules(findings):
    return sorted(f.rule for f in findings)


def test_unconverted_port_gets_every_contract_finding(tmp_path):
    findings = _check(tmp_path, UNCONVERTED)
    assert _rules(findings) == NEW
    by_rule = {f.rule: f.message for f in findings}
    assert "`x` -> hidden_states" in by_rule["M014"] and "`t` -> timestep" in by_rule["M014"] and "`y` -> class_labels" in by_rule["M014"]
    assert "Attention" in by_rule["M017"] and "attention_processor.py" in by_rule["M017"]


def test_converted_port_is_clean(tmp_path):
    assert _check(tmp_path, CONVERTED) == []


def test_return_dict_accepted_and_ignored(tmp_path):
    source = CONVERTED.replace("        if not return_dict:\n            return (hidden_states,)\n", "")
    assert _rules(_check(tmp_path, source, select=["M012"])) == ["M012"]
    both = CONVERTED.replace("return (hidden_states,)", "return Transformer2DModelOutput(sample=hidden_states)")
    findings = _check(tmp_path, both, select=["M012"])
    assert _rules(findings) == ["M012"] and "same kind of result" in findings[0].message


@pytest.mark.parametrize("tail", [
    # an import alias and a module-level alias of the dataclass
    ("from diffusers.models.modeling_outputs import Transformer2DModelOutput as Out\n", "return Out(sample=hidden_states)"),
    ("Out = Transformer2DModelOutput\n", "return Out(sample=hidden_states)"),
    # a local BaseOutput subclass, built through a variable
    ("from dataclasses import dataclass\nfrom diffusers.utils import BaseOutput\n\n\n@dataclass\nclass TinyOut(BaseOutput):\n    sample: torch.Tensor\n",
     "result = TinyOut(sample=hidden_states)\n        return result"),
    # a same-class helper that builds the dataclass, and a delegation the file cannot see into
    ("", "return self._wrap(hidden_states)\n\n    def _wrap(self, out):\n        return Transformer2DModelOutput(sample=out)"),
    ("", "return super().forward(hidden_states, timestep, class_labels, return_dict=return_dict)"),
])
def test_output_dataclass_is_followed(tmp_path, tail):
    prelude, ret = tail
    source = CONVERTED.replace("\n\nclass TinyAttention", "\n" + prelude + "\n\nclass TinyAttention").replace(
        "return Transformer2DModelOutput(sample=hidden_states)", ret)
    assert _check(tmp_path, source, select=["M012", "M013"]) == []


def test_output_dataclass_missing_through_a_helper(tmp_path):
    source = CONVERTED.replace("return Transformer2DModelOutput(sample=hidden_states)", "return self._pack(hidden_states)\n\n    def _pack(self, out):\n        return (out,)")
    assert _rules(_check(tmp_path, source, select=["M013"])) == ["M013"]


def test_auxiliary_models_and_containers_are_not_judged(tmp_path):
    # no timestep: an adapter or projection model returns a plain tensor in diffusers too
    adapter = HEADER + "\n\nclass TinyAdapter(ModelMixin):\n    def forward(self, x):\n        return x\n"
    assert _check(tmp_path, adapter, select=["M012", "M013", "M014"]) == []
    # a container of whole models (MultiControlNetModel) returns what the pipelines merge
    multi = HEADER + (
        "\n\nclass TinyMulti(ModelMixin):\n    def __init__(self, nets):\n        super().__init__()\n        self.nets = nn.ModuleList(nets)\n\n"
        "    def forward(self, sample, timestep, return_dict: bool = True):\n        for net in self.nets:\n            sample = net(sample, timestep)\n        return sample, None\n"
    )
    assert _check(tmp_path, multi, select=["M013", "M016"]) == []


def test_gradient_checkpointing_declared_false_is_a_decision(tmp_path):
    source = CONVERTED.replace("_supports_gradient_checkpointing = True", "_supports_gradient_checkpointing = False")
    assert _check(tmp_path, source, select=["M016"]) == []
    without = CONVERTED.replace("    _supports_gradient_checkpointing = True\n", "")
    assert _rules(_check(tmp_path, without, select=["M016"])) == ["M016"]


def test_class_name_shadow_alias_and_deprecation_shim(tmp_path):
    alias = CONVERTED + "\n\nFeedForward = TinyAttention\n"
    assert _rules(_check(tmp_path, alias, select=["M017"])) == ["M017"]
    shim = HEADER + (
        "\nfrom diffusers.utils import deprecate\n\n\nclass Attention(nn.Module):\n"
        "    def __init__(self):\n        deprecate(\"Attention\", \"1.0.0\", \"import it from its new home\")\n        super().__init__()\n"
    )
    assert _check(tmp_path, shim, select=["M017"]) == []


def test_docstring_with_args_section_counts(tmp_path):
    source = CONVERTED.replace("    Parameters:\n", "    Args:\n")
    assert _check(tmp_path, source, select=["M015"]) == []
    bare = CONVERTED.replace("    Parameters:\n", "")
    assert _rules(_check(tmp_path, bare, select=["M015"])) == ["M015"]


def test_new_rules_are_ordinary_findings():
    from agent.checks.registry import RULES, resolve_ids

    resolve_ids([])
    for rid in NEW:
        assert RULES[rid].default and not RULES[rid].blocks_pass and RULES[rid].scope == "models"


def test_optional_import_rule_ignores_a_standalone_ports_own_modules_and_its_tests(tmp_path):
    """M010 is about third-party packages: the port's sibling module and a test file importing
    it are not optional dependencies; a real third-party import beside them still is."""
    (tmp_path / "transformer_x.py").write_text("import torch\n")
    (tmp_path / "helpers.py").write_text("from transformer_x import torch\nimport timm\n")
    (tmp_path / "test_transformer_x.py").write_text("import pytest\nfrom transformer_x import torch\n")
    found = [(Path(f.path).name, f.message) for f in check_paths([tmp_path], select={"M010"}, use_cache=False)]
    assert [name for name, _ in found] == ["helpers.py"] and "'timm'" in found[0][1]
