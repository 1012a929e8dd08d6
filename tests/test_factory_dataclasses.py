"""A model its repository's factory builds from dataclass specs (a list of level specs, each with
an attention spec of one of two types, and a mapping spec defined in the factory's module, which
the model's module never imports) ports end to end with exact parity: the specs become JSON in
the port's config.json, the port's __init__ rebuilds them, and from_pretrained round-trips. The
arguments named like the model's submodules (`levels`, `mapping`) get a `_config` suffix, because
a ModelMixin would answer `self.levels` with the config value."""

import json

import pytest
from conftest import integrate
from porter_sources import analyze_source, lay_out

from agent.errors import IntegrateError

FILES = {
    "spkg/__init__.py": "",
    "spkg/model.py": """
        from dataclasses import dataclass
        from typing import Union

        import torch
        import torch.nn.functional as F
        from torch import nn


        @dataclass
        class GlobalSpec:
            d_head: int


        @dataclass
        class WindowSpec:
            d_head: int
            window: int


        @dataclass
        class LevelSpec:
            width: int
            attn: Union[GlobalSpec, WindowSpec]
            pad: tuple = (0, 0)


        class GlobalMix(nn.Module):
            def __init__(self, width, d_head):
                super().__init__()
                self.proj = nn.Linear(width, width)
                self.scale = d_head ** -0.5

            def forward(self, x):
                return x + self.proj(x.mean((2, 3)))[:, :, None, None] * self.scale


        class WindowMix(nn.Module):
            def __init__(self, width, d_head, window):
                super().__init__()
                self.proj = nn.Conv2d(width, width, 1)
                self.window = window
                self.scale = d_head ** -0.5

            def forward(self, x):
                pooled = self.proj(F.avg_pool2d(x, self.window))
                return x + F.interpolate(pooled, scale_factor=self.window) * self.scale


        class Level(nn.Module):
            def __init__(self, spec):
                super().__init__()
                if isinstance(spec.attn, GlobalSpec):
                    self.mix = GlobalMix(spec.width, spec.attn.d_head)
                elif isinstance(spec.attn, WindowSpec):
                    self.mix = WindowMix(spec.width, spec.attn.d_head, spec.attn.window)
                else:
                    raise TypeError(f"unknown attention spec {spec.attn}")
                self.pad = spec.pad + (0, 0)  # a TypeError if the spec held a list
                self.norm = nn.GroupNorm(1, spec.width)

            def forward(self, x):
                return self.mix(self.norm(F.pad(x, self.pad)))


        class SpecNet(nn.Module):
            def __init__(self, in_channels, levels, mapping):
                super().__init__()
                self.proj_in = nn.Conv2d(in_channels, levels[0].width, 1)
                self.mapping = nn.Sequential(nn.Linear(1, mapping.width), nn.SiLU(), nn.Linear(mapping.width, levels[0].width))
                self.levels = nn.ModuleList([Level(spec) for spec in levels])
                self.proj_out = nn.Conv2d(levels[-1].width, in_channels, 1)

            def forward(self, x, sigma):
                h = self.proj_in(x) + self.mapping(sigma[:, None])[:, :, None, None]
                for level in self.levels:
                    h = level(h)
                return self.proj_out(h)
    """,
    "spkg/config.py": """
        from dataclasses import dataclass

        from .model import GlobalSpec, LevelSpec, SpecNet, WindowSpec


        @dataclass
        class MappingSpec:
            width: int


        def make_model(config):
            m = config["model"]
            attns = [WindowSpec(a["d_head"], a["window"]) if a["type"] == "window" else GlobalSpec(a["d_head"]) for a in m["attns"]]
            levels = [LevelSpec(w, a, pad=(0, 0)) for w, a in zip(m["widths"], attns)]
            return SpecNet(m["in_channels"], levels, MappingSpec(m["mapping_width"]))
    """,
}

CONFIG = {
    "architectures": ["SpecNet"], "_factory": "spkg.config:make_model",
    "model": {"in_channels": 3, "widths": [16, 16], "mapping_width": 8,
              "attns": [{"type": "window", "d_head": 8, "window": 2}, {"type": "global", "d_head": 4}]},
    "optimizer": {"lr": 0.0001},
}


@pytest.mark.slow
def test_dataclass_specs_from_a_factory_port_exactly(tmp_path):
    src = lay_out(tmp_path / "specnet", FILES, CONFIG, "spkg.model")
    proc = integrate(str(src), "--out", "out", "--llm", "none", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    stages = run["stages"]
    assert stages["port"]["result"]["parity"]["max_abs_diff"] == 0
    assert summary["parity"]["passed"] and summary["parity"]["max_abs_diff"] == 0
    analysis = stages["analyze"]["result"]
    assert analysis["config_dataclasses"] == {
        "arguments": ["levels", "mapping"],
        "classes": {"LevelSpec": "spkg.model", "WindowSpec": "spkg.model", "GlobalSpec": "spkg.model", "MappingSpec": "spkg.config"},
        "not_in_entry_module": ["MappingSpec"],
    }
    assert analysis["port_renames"] == {"levels": "levels_config", "mapping": "mapping_config"}

    # the saved config holds the specs as JSON, and from_pretrained rebuilt the same model (verify's reload)
    saved = json.loads((tmp_path / "out" / "weights" / "config.json").read_text())
    first = saved["levels_config"][0]
    assert first == {"_dataclass": "LevelSpec", "width": 16, "pad": [0, 0], "_tuple_fields": ["pad"],
                     "attn": {"_dataclass": "WindowSpec", "d_head": 8, "window": 2}}
    assert saved["levels_config"][1]["attn"] == {"_dataclass": "GlobalSpec", "d_head": 4}
    assert saved["mapping_config"] == {"_dataclass": "MappingSpec", "width": 8}
    assert stages["convert"]["result"]["reload_equal"]
    assert "saved" in (tmp_path / "out" / "parity_spec.py").read_text()

    model = open(stages["port"]["result"]["model_file"]).read()
    assert "class MappingSpec" in model and "class WindowSpec" in model  # the definitions came along
    pr = (tmp_path / "out" / "PR.md").read_text()
    assert "passes dataclasses" in pr and "`mapping` -> `mapping_config`" in pr


UNREPRESENTABLE = {
    "upkg/__init__.py": "",
    "upkg/model.py": """
        from torch import nn


        class ActNet(nn.Module):
            def __init__(self, width, act):
                super().__init__()
                self.proj = nn.Linear(width, width)
                self.act = act

            def forward(self, x, sigma):
                return self.act(self.proj(x)) * sigma[:, None]
    """,
    "upkg/config.py": """
        from torch import nn

        from .model import ActNet


        def make_model(config):
            return ActNet(config["model"]["width"], nn.GELU())
    """,
}


def test_a_factory_argument_config_json_cannot_hold_is_named(tmp_path):
    config = {"architectures": ["ActNet"], "_factory": "upkg.config:make_model", "model": {"width": 8}}
    src = lay_out(tmp_path / "actnet", UNREPRESENTABLE, config, "upkg.model")
    with pytest.raises(IntegrateError) as err:
        analyze_source(src, tmp_path / "runs")
    message = str(err.value)
    assert "\n" not in message
    assert "act = torch.nn.modules.activation.GELU" in message and "make the factory pass plain values" in message


NEEDS_PACKAGE = {
    "npkg/__init__.py": "",
    "npkg/model.py": """
        from torch import nn


        class LocalNet(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.proj = nn.Linear(width, width)

            def forward(self, x, sigma):
                import integrate_absent_kernels  # an optional kernel package, imported where it is used

                return integrate_absent_kernels.local(self.proj(x), sigma)
    """,
}


def test_a_forward_that_needs_a_missing_package_stops_with_its_name(tmp_path):
    src = lay_out(tmp_path / "localnet", NEEDS_PACKAGE, {"architectures": ["LocalNet"], "width": 8}, "npkg.model")
    with pytest.raises(IntegrateError) as err:
        analyze_source(src, tmp_path / "runs")
    message = str(err.value)
    assert "\n" not in message and "inputs file" not in message  # no input can fix a missing package
    assert "needs the package 'integrate_absent_kernels', which is not installed" in message


SHADOWING = {
    "hpkg/__init__.py": "",
    "hpkg/model.py": """
        from torch import nn


        class NormNet(nn.Module):
            def __init__(self, width, norm=True):
                super().__init__()
                self.proj = nn.Linear(width, width)
                self.norm = nn.LayerNorm(width) if norm else nn.Identity()

            def forward(self, x, sigma):
                return self.norm(self.proj(x)) * sigma[:, None, None]
    """,
}


@pytest.mark.slow
def test_an_argument_named_like_a_submodule_is_renamed_in_the_port(tmp_path):
    """Without the rename, the port's self.norm is the config value True (ModelMixin's __getattr__)."""
    src = lay_out(tmp_path / "normnet", SHADOWING, {"architectures": ["NormNet"], "width": 8, "norm": True}, "hpkg.model")
    proc = integrate(str(src), "--out", "out", "--llm", "none", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["parity"]["passed"]  # within float tolerance: Linear + LayerNorm here differ by ~6e-8 across the sides
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    assert run["stages"]["port"]["result"]["parity"]["passed"]
    assert run["stages"]["analyze"]["result"]["port_renames"] == {"norm": "norm_config"}
    assert json.loads((tmp_path / "out" / "weights" / "config.json").read_text())["norm_config"] is True
    # a reference config.json converts to the port's arguments under the new name
    assert run["stages"]["conventions"]["result"]["config_conversion"]["renames"]["norm"] == "norm_config"
