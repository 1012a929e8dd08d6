"""Whole runs in the folder layout: on a diffusers checkout that already uses model folders (the
layout is detected) and standalone with --layout folder. Each branch imports in a fresh process,
passes parity, carries its mapping in the model's folder, and `integrate verify` reproduces it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import git
import pytest
from conftest import EXAMPLE, integrate

pytestmark = pytest.mark.slow

FOLDER = "src/diffusers/models/transformers/tiny_dit"

# the record and the class, side by side, in a process that sees only the branch's diffusers
RECORD_PROBE = '''
import json
from diffusers import TinyDiTTransformer2DModel as M
from diffusers.models.transformers.tiny_dit import metadata

meta = metadata()
print(json.dumps({
    "module": M.__module__,
    "pairs": [
        [meta._supports_gradient_checkpointing, bool(M._supports_gradient_checkpointing)],
        [list(meta._no_split_modules), list(M._no_split_modules or [])],
        [list(meta._skip_layerwise_casting_patterns), list(M._skip_layerwise_casting_patterns or [])],
        [list(meta._repeated_blocks), list(M._repeated_blocks or [])],
        [meta._supports_group_offloading, bool(M._supports_group_offloading)],
    ],
    "mapping": list(meta._weight_mapping),
}))
'''


def _verify(branch: Path, tmp_path: Path, name: str) -> tuple[int, dict[str, dict]]:
    out = tmp_path / f"{name}.json"
    proc = integrate("verify", str(branch), "--reference", str(EXAMPLE), "--json", str(out), cwd=tmp_path, timeout=900)
    assert "Traceback" not in proc.stderr, proc.stderr
    rows = json.loads(out.read_text()) if out.exists() else []
    return proc.returncode, {r["claim"]: r for r in rows}


def test_target_in_folder_form_gets_a_model_folder(folder_checkout_template, tmp_path):
    checkout = tmp_path / "diffusers"
    shutil.copytree(folder_checkout_template, checkout, symlinks=True)
    repo = git.Repo(checkout)
    proc = integrate(str(EXAMPLE), "--target", str(checkout), "--llm", "none", "--json", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    planned = run["stages"]["plan"]["result"]
    assert planned["model_layout"] == "folder" and "(dit)" in planned["layout_reason"]
    assert run["stages"]["verify"]["result"]["parity"]["passed"]
    assert run["stages"]["verify"]["result"]["generated_test"]["passed"]
    # diffusers' ruff settings hold for every changed file, the folder's included
    assert run["stages"]["publish"]["result"]["repo_checks"]["blocking"] == []

    branch = summary["publish"]["branch"]
    changed = set(repo.git.diff("--name-only", f"main...{branch}").split())
    assert {f"{FOLDER}/__init__.py", f"{FOLDER}/model.py", f"{FOLDER}/_weight_mapping.py", f"{FOLDER}/_metadata.py"} <= changed
    assert not any(p.startswith(".integrate/") and p.endswith("_weight_mapping.py") for p in changed)  # the mapping lives with the model
    family_init = repo.git.show(f"{branch}:src/diffusers/models/transformers/__init__.py")
    assert "from .tiny_dit import TinyDiTTransformer2DModel" in family_init
    models_init = repo.git.show(f"{branch}:src/diffusers/models/__init__.py")
    assert '_import_structure["transformers.tiny_dit"] = ["TinyDiTTransformer2DModel"]' in models_init
    model = repo.git.show(f"{branch}:{FOLDER}/model.py")
    assert "from ....configuration_utils import ConfigMixin, register_to_config" in model  # one folder deeper
    manifest = json.loads(repo.git.show(f"{branch}:.integrate/tiny_dit/integrate-evidence.json"))
    assert manifest["converted"]["mapping"]["path"] == f"{FOLDER}/_weight_mapping.py"
    assert list(manifest["port"]["files"])[0] == f"{FOLDER}/model.py"
    assert "[[autodoc]] TinyDiTTransformer2DModel" in repo.git.show(f"{branch}:docs/source/en/api/models/tiny_dit.md")
    assert "src/diffusers/utils/dummy_pt_objects.py" in changed  # dummies do not depend on the layout
    assert "class TinyDiTTransformer2DModel(metaclass=DummyObject)" in repo.git.show(f"{branch}:src/diffusers/utils/dummy_pt_objects.py")
    test_file = "tests/models/transformers/test_models_transformer_tiny_dit.py"
    assert test_file in changed and "TinyDiTTransformer2DModel" in repo.git.show(f"{branch}:{test_file}")

    repo.git.checkout(branch)
    env = {"PYTHONPATH": str(checkout / "src"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    out = subprocess.run([sys.executable, "-c", RECORD_PROBE], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout)
    assert probe["module"] == "diffusers.models.transformers.tiny_dit.model"
    assert all(record == declared for record, declared in probe["pairs"]), probe["pairs"]
    assert probe["mapping"] == ["tiny-dit"]

    code, rows = _verify(checkout, tmp_path, "claims")
    assert code == 0, {k: r for k, r in rows.items() if not r["agrees"]}
    assert rows[f"weight mapping unchanged: {FOLDER}/_weight_mapping.py"]["agrees"]
    assert rows[f"port file unchanged: {FOLDER}/_metadata.py"]["agrees"]


def test_layout_flat_on_a_folder_checkout_writes_the_flat_file(folder_checkout_template, tmp_path):
    checkout = tmp_path / "diffusers"
    shutil.copytree(folder_checkout_template, checkout, symlinks=True)
    repo = git.Repo(checkout)
    proc = integrate(str(EXAMPLE), "--target", str(checkout), "--layout", "flat", "--llm", "none", "--json", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    assert run["stages"]["plan"]["result"]["layout_reason"] == "--layout flat"
    assert run["stages"]["verify"]["result"]["generated_test"]["passed"]
    changed = set(repo.git.diff("--name-only", f"main...{summary['publish']['branch']}").split())
    assert "src/diffusers/models/transformers/transformer_tiny_dit.py" in changed
    assert ".integrate/transformer_tiny_dit/_weight_mapping.py" in changed
    assert not any(p.startswith(f"{FOLDER}/") for p in changed)


def test_standalone_folder_layout(tmp_path):
    proc = integrate(str(EXAMPLE), "--out", "out", "--layout", "folder", "--json", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    package = out / "transformer_tiny_dit"
    assert sorted(p.name for p in package.iterdir() if p.suffix == ".py") == ["__init__.py", "_metadata.py", "_weight_mapping.py", "model.py"]
    assert not (out / "_weight_mapping.py").exists()
    pr = (out / "PR.md").read_text()
    assert "--mapping transformer_tiny_dit/_weight_mapping.py" in pr
    assert "(standalone layout, as a model folder, `transformer_tiny_dit/model.py`)" in pr

    # the package imports from the folder and loads the converted weights
    script = (
        "from transformer_tiny_dit import TinyDiTTransformer2DModel as M, metadata\n"
        "m = M.from_pretrained('weights')\n"
        "print(M.__module__, metadata()._weight_mapping)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=out,
                         env={**os.environ, "PYTHONPATH": str(out)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "transformer_tiny_dit.model"

    code, rows = _verify(out, tmp_path, "untouched")
    assert code == 0, {k: r for k, r in rows.items() if not r["agrees"]}
    # the mapping in the folder is evidence like any other: a changed byte is reported by its claim;
    # and the rules read the whole folder, so an environment read planted in the record blocks
    mapping = package / "_weight_mapping.py"
    mapping.write_text(mapping.read_text() + "# edited\n")
    record = package / "_metadata.py"
    record.write_text(record.read_text() + "\nimport os\n\nDEBUG = os.environ.get('INTEGRATE_DEBUG')\n")
    code, rows = _verify(out, tmp_path, "tampered")
    assert code == 1
    checked = "transformer_tiny_dit/model.py and its folder's 3 other files"
    assert {k for k, r in rows.items() if not r["agrees"]} == {
        "weight mapping unchanged: transformer_tiny_dit/_weight_mapping.py",
        "port file unchanged: transformer_tiny_dit/_metadata.py",
        f"no blocking finding (tampering, unparsable file) in {checked}",
        f"convention findings on {checked}",
    }
