"""The folder layout's capability record (`metadata()`, as in diffusers' model-folder refactor):
every row agrees with the class it describes, follows the class when the class changes, and the
folder's generated files pass diffusers' own ruff settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import DIFFUSERS_RUFF_SETTINGS

from agent.porting.formatting import ruff_command
from agent.render import render
from sandbox.mapping import match_by_name

FULL = '''
from torch import nn

from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.loaders.transformer_sd3 import SD3Transformer2DLoadersMixin
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.modeling_utils import ModelMixin


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x)


class ToyModel(ModelMixin, ConfigMixin, CacheMixin, PeftAdapterMixin, SD3Transformer2DLoadersMixin):
    _supports_gradient_checkpointing = True
    _supports_group_offloading = False
    _no_split_modules = ["Block"]
    _skip_layerwise_casting_patterns = ["norm"]
    _repeated_blocks = ["Block"]
    _cp_plan = {"": {}}

    @register_to_config
    def __init__(self, dim: int = 4):
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim)])
        self.gradient_checkpointing = False

    def forward(self, x):
        for block in self.blocks:
            x = self._gradient_checkpointing_func(block, x) if self.gradient_checkpointing else block(x)
        return x
'''

PLAIN = '''
from torch import nn

from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


class ToyModel(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 4):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        return self.proj(x)
'''

PROBE = '''
import json
from toy_model import ToyModel, metadata

first = metadata()
rows = {key: list(value) if isinstance(value, tuple) else value for key, value in first.items()}
ToyModel._supports_gradient_checkpointing = not ToyModel._supports_gradient_checkpointing
print(json.dumps({
    "rows": rows,
    "as_attribute": first._supports_cache,
    "contains": ["_lora" in first, "_nothing" in first],
    "table": str(first),
    "verbose": first.describe(verbose=True),
    "after_change": metadata()._supports_gradient_checkpointing,
}))
'''


def _package(root: Path, model_code: str, with_mapping: bool) -> Path:
    pkg = root / "toy_model"
    pkg.mkdir(parents=True)
    common = {"year": 2026, "class_name": "ToyModel"}
    (pkg / "__init__.py").write_text(render("model/folder/__init__.py.j2", own_record=True, **common))
    (pkg / "_metadata.py").write_text(render("model/folder/_metadata.py.j2", origin="org/toy", **common))
    (pkg / "model.py").write_text(model_code)
    if with_mapping:
        (pkg / "_weight_mapping.py").write_text(match_by_name({"w": (2, 2)}, {"w": (2, 2)}).to_module_source("ToyModel"))
    return pkg


def _probe(root: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=root)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_row_says_what_the_class_declares(tmp_path):
    _package(tmp_path, FULL, with_mapping=True)
    got = _probe(tmp_path)
    assert got["rows"] == {
        "_supports_gradient_checkpointing": True,
        "_supports_group_offloading": False,  # the class turned ModelMixin's default off
        "_no_split_modules": ["Block"],
        "_skip_layerwise_casting_patterns": ["norm"],
        "_repeated_blocks": ["Block"],
        "_cp_plan": True,
        "_weight_mapping": ["org/toy"],  # the folder has a _weight_mapping.py
        "_lora": True,  # PeftAdapterMixin among the bases
        "_supports_cache": True,  # CacheMixin among the bases
        "_supports_ip_adapter": True,  # a loader mixin with _load_ip_adapter_weights
    }
    assert got["as_attribute"] is True and got["contains"] == [True, False]
    # read when asked: the record follows a change to the class
    assert got["after_change"] is False
    assert got["table"].startswith("ToyModel feature attributes\n")
    assert "  _no_split_modules                 Block\n" in got["table"]
    assert "https://huggingface.co/docs/diffusers/optimization/cache" in got["verbose"]


def test_a_plain_class_claims_nothing_it_does_not_have(tmp_path):
    _package(tmp_path, PLAIN, with_mapping=False)
    got = _probe(tmp_path)
    assert got["rows"] == {
        "_supports_gradient_checkpointing": False,
        "_supports_group_offloading": True,  # ModelMixin's own default, inherited
        "_no_split_modules": [],
        "_skip_layerwise_casting_patterns": [],
        "_repeated_blocks": [],
        "_cp_plan": False,
        "_weight_mapping": [],  # no _weight_mapping.py in the folder (yet)
        "_lora": False,
        "_supports_cache": False,
        "_supports_ip_adapter": False,
    }
    assert got["after_change"] is True
    assert "  _weight_mapping                   -\n" in got["table"]


def test_the_folder_files_pass_diffusers_ruff(tmp_path):
    ruff = ruff_command()
    assert ruff is not None, "ruff is a test dependency"
    (tmp_path / "pyproject.toml").write_text(DIFFUSERS_RUFF_SETTINGS)
    pkg = _package(tmp_path / "src", FULL, with_mapping=False)
    (pkg / "model.py").unlink()  # the port's file is formatted by the port; here: the folder's own files
    for argv in (["check"], ["format", "--check"]):
        out = subprocess.run([*ruff, *argv, "--no-cache", "src"], capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr
