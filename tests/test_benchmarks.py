"""The figures docs/ records come from scripts; these keep the scripts working and the claims true."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_mutation_benchmark_catches_and_names_every_mutant(tmp_path, monkeypatch):
    pytest.importorskip("ldm.modules.diffusionmodules.openaimodel", reason="install with: pip install --no-deps stable-diffusion-sdkit==2.1.5")
    bench = load("parity_mutants")
    out = tmp_path / "mutants.json"
    monkeypatch.setattr(sys, "argv", ["parity_mutants.py", "--json", str(out)])
    assert bench.main() == 0
    rows = json.loads(out.read_text())
    assert len(rows) >= 30
    assert all(r["caught"] for r in rows)
    assert sum(r["named"] for r in rows) >= 0.9 * len(rows)
