"""Reference repos, sources and specs that attack the host, run through the real CLI.

Each attack plants what made host code follow links or block before: symlinks where the host
reads or writes (logs, reports, results, the plot), FIFOs, links out of the source folder.
Every test asserts the attack changed nothing on the host (a canary file and a fake
site-packages folder stay as they were) and that the run ended inside the exit-code contract.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import EXAMPLE, assert_one_line_error, integrate

CANARY_TEXT = "-----BEGIN PRIVATE KEY----- canary"
PLANTED = ("parity.log", "parity.json", "parity_layers.png", "probe_reference.log", "convert_weights.log",
           "reference.log", "candidate.log", "mapping.log", "snippet.py", "progress", "checks.json", "summary.json")


def _canary(tmp_path: Path) -> tuple[Path, Path]:
    canary = tmp_path / "home" / ".ssh" / "id_ed25519"
    canary.parent.mkdir(parents=True)
    canary.write_text(CANARY_TEXT)
    site = tmp_path / "site-packages"
    site.mkdir()
    return canary, site


def _assert_host_untouched(tmp_path: Path, canary: Path, site: Path, *outputs: Path) -> None:
    assert canary.read_text() == CANARY_TEXT
    assert list(site.iterdir()) == [], "something was written through a planted link"
    for out in outputs:
        for p in out.rglob("*"):
            assert not p.is_symlink(), f"a link reached the output: {p}"
            if p.is_file():
                assert CANARY_TEXT.encode() not in p.read_bytes(), f"the canary reached {p}"


def test_links_out_of_a_local_source_are_refused(tmp_path, example):
    canary, site = _canary(tmp_path)
    os.symlink(canary, example / "notes.md")
    proc = integrate(str(example), "--out", "out", cwd=tmp_path)
    assert_one_line_error(proc, "outside the source")
    _assert_host_untouched(tmp_path, canary, site, tmp_path / "runs")


def test_a_link_inside_the_source_is_read_where_it_points(tmp_path, example):
    (example / "configs").mkdir()
    shutil.move(example / "config.json", example / "configs" / "tiny.json")
    os.symlink("configs/tiny.json", example / "config.json")
    proc = integrate(str(example), "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "runs").glob("*/source/config.json").__next__().is_symlink()


def test_a_fifo_in_the_source_is_refused_without_hanging(tmp_path, example):
    (example / "README.md").unlink()
    os.mkfifo(example / "README.md")
    proc = integrate(str(example), "--out", "out", cwd=tmp_path, timeout=120)
    assert_one_line_error(proc, "not a regular file")


def test_reference_code_planting_links_and_fifos_in_its_workspaces(tmp_path, example):
    """The reference plants links to a private key and to a site-packages .pth in every
    folder it runs in (analysis probe, parity sides, mapping, conversion), and a FIFO; the run
    goes through every stage, nothing the host wrote or read went through them, and the port
    (which carries the planting code) is refused by the tamper rule, not published."""
    canary, site = _canary(tmp_path)
    code = (example / "tiny_dit.py").read_text()
    hostile = f'''
def _plant():
    import os
    for name in {PLANTED!r}:
        for target in ({str(canary)!r}, {str(site / "evil.pth")!r}):
            try:
                os.symlink(target, name)
                break
            except OSError:
                pass
    try:
        os.mkfifo("parity_report.fifo")
    except OSError:
        pass

'''
    code = code.replace("class TinyDiT(nn.Module):", hostile + "\nclass TinyDiT(nn.Module):")
    marker = "        super().__init__()\n"
    first = code.index(marker, code.index("class TinyDiT(nn.Module):"))
    code = code[:first] + marker + "        _plant()\n" + code[first + len(marker):]
    (example / "tiny_dit.py").write_text(code)

    proc = integrate(str(example), "--out", "out", "--run-id", "r", "--json", cwd=tmp_path, timeout=600)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["stages"]["convert"]["status"] == "done" and report["stage_reached"] == "verify"
    assert "T006" in report["error"] and "os.symlink" in report["error"]
    planted = [p for p in (tmp_path / "runs").rglob("*") if p.is_symlink()]
    assert planted, "the attack did not run: nothing was planted"
    _assert_host_untouched(tmp_path, canary, site, tmp_path / "out")
    objects = subprocess.run(["git", "-C", str(tmp_path / "out"), "cat-file", "--batch-all-objects", "--batch"],
                             capture_output=True).stdout
    assert CANARY_TEXT.encode() not in objects


def test_a_spec_whose_reference_side_swaps_its_files_for_links(tmp_path):
    """A spec's reference() replaces the inputs it just wrote with a link to a private key:
    the host refuses to copy through it, and the key never reaches the candidate side."""
    canary, site = _canary(tmp_path)
    spec = tmp_path / "spec" / "spec.py"
    spec.parent.mkdir()
    spec.write_text(f'''
import os
import torch
from torch import nn


def reference():
    os.replace("inputs.safetensors", "gone.safetensors")
    os.symlink({str(canary)!r}, "inputs.safetensors")
    return nn.Linear(4, 4)


def candidate():
    return nn.Linear(4, 4)


def inputs(seed):
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(seed))
    return {{"reference": {{"input": x}}, "candidate": {{"input": x}}}}
''')
    proc = integrate("parity", str(spec), "--json", str(tmp_path / "r.json"), cwd=tmp_path, timeout=300)
    assert_one_line_error(proc, "link")
    _assert_host_untouched(tmp_path, canary, site)


def test_plot_and_json_outputs_replace_a_link_instead_of_writing_through_it(tmp_path):
    canary, site = _canary(tmp_path)
    spec = tmp_path / "spec" / "spec.py"
    spec.parent.mkdir()
    spec.write_text('''
import torch
from torch import nn


def reference():
    return nn.Linear(4, 4)


def candidate():
    return nn.Linear(4, 4)


def inputs(seed):
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(seed))
    return {"reference": {"input": x}, "candidate": {"input": x}}
''')
    os.symlink(canary, tmp_path / "plot.png")
    os.symlink(canary, tmp_path / "report.json")
    proc = integrate("parity", str(spec), "--json", "report.json", "--plot", "plot.png", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "plot.png").is_symlink() and (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is True
    assert canary.read_text() == CANARY_TEXT


def test_example_source_is_unchanged_by_a_run(tmp_path):
    before = {p.name: p.read_bytes() for p in EXAMPLE.iterdir() if p.is_file()}
    proc = integrate(str(EXAMPLE), "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.read_bytes() for p in EXAMPLE.iterdir() if p.is_file()} == before
