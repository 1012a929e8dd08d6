"""--help everywhere; the example's weights regenerate exactly; packaging data is found."""

import subprocess
import sys

import pytest
from conftest import EXAMPLE, integrate
from safetensors.torch import load_file


@pytest.mark.parametrize("command", [[], ["run"], ["resume"], ["parity"], ["check"], ["sandbox"]])
def test_help(tmp_path, command):
    proc = integrate(*command, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout or "usage:" in proc.stdout.lower()


def test_top_level_help_lists_commands(tmp_path):
    proc = integrate("--help", cwd=tmp_path)
    for word in ("resume", "parity", "check", "sandbox", "SOURCE"):
        assert word in proc.stdout


def test_example_weights_regenerate_exactly(tmp_path):
    out = tmp_path / "w.safetensors"
    subprocess.run([sys.executable, str(EXAMPLE.parent / "make_tiny_dit_weights.py"), str(out)], check=True, capture_output=True)
    fresh, committed = load_file(str(out)), load_file(str(EXAMPLE / "model.safetensors"))
    assert fresh.keys() == committed.keys()
    for k in fresh:
        assert (fresh[k] == committed[k]).all(), k
    assert (EXAMPLE / "model.safetensors").stat().st_size < 1_000_000


def test_skills_and_templates_are_found():
    from agent.resources import skills_dir, templates_dir

    assert (skills_dir() / "models.md").is_file()
    assert (templates_dir() / "model" / "transformer_flat.py.j2").is_file()
