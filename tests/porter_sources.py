"""Source folders laid out like Hub repos for the porter's tests: code files, config.json, a model
card and seeded weights saved from the model itself (made in the sandbox, like every run of
reference code)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import sandbox
from agent.run_state import Run
from agent.stages.analyze import analyze
from agent.stages.resolve import resolve

MAKE_WEIGHTS = """
import importlib, inspect, json, sys, torch
from safetensors.torch import save_file
sys.path.insert(0, ".")
config = json.load(open("config.json"))
hub = {"architectures", "_factory", "model_type"}
torch.manual_seed(0)
if "_factory" in config:
    module, _, fn = config["_factory"].partition(":")
    model = getattr(importlib.import_module(module), fn)({k: v for k, v in config.items() if k not in hub})
else:
    cls = getattr(importlib.import_module(%(module)r), config["architectures"][0])
    defaults = {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()}
    model = cls(**{k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
                   for k, v in config.items() if k not in hub})
g = torch.Generator().manual_seed(1)
state = {k: (torch.randn(v.shape, generator=g) * 0.2).contiguous() if v.is_floating_point() else v.contiguous()
         for k, v in model.state_dict().items()}
save_file(state, "model.safetensors")
"""


def lay_out(dest: Path, files: dict[str, str], config: dict, module: str, license_text: str | None = None) -> Path:
    """Write `files` (dedented), config.json and a card into `dest`, then save seeded weights."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    (dest / "README.md").write_text(f"# {config.get('architectures', ['model'])[0]} (test model, seeded weights)\n")
    if license_text is not None:
        (dest / "LICENSE").write_text(textwrap.dedent(license_text).lstrip("\n"))
    res = sandbox.run([sys.executable, "-c", MAKE_WEIGHTS % {"module": module}], dest, limits=sandbox.Limits(wall_s=300))
    assert res.ok, res.stderr[-2000:]
    return dest


def analyze_source(source: Path, runs: Path, **inputs) -> tuple[Run, dict]:
    """resolve + analyze on `source`, as a run would (the probe runs sandboxed)."""
    run = Run.create(runs, {"source": str(source), "reference": None, "device": "cpu", **inputs})
    for name, stage in (("resolve", resolve), ("analyze", analyze)):
        run.start_stage(name)
        run.finish_stage(name, stage(run), 0.0)
    return run, run.result("analyze")


def by_name(analysis: dict) -> dict[str, dict]:
    return {e["name"]: e for e in analysis["inputs"]}
