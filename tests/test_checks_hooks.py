"""Where users run the checks: the pre-commit hook definitions (exercised with pre-commit's own
`try-repo` on a temporary repository) and the GitHub Actions example (its check step run as written
on a temporary checkout, the SARIF it writes validated and its paths checked)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_checks import _validate_sarif

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "examples" / "github-actions" / "integrate-check.yml"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"})


def _env(tmp_path: Path) -> dict:
    """The `integrate` of this tree on PATH, pre-commit's cache in the test's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _pre_commit() -> list[str]:
    if shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None and shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed (pip install '.[test]')")
    return [sys.executable, "-m", "pre_commit"]


def test_hook_manifest_is_valid():
    proc = subprocess.run([*_pre_commit(), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["integrate-check"]["language"] == "python" and hooks["integrate-check"]["entry"] == "integrate check"
    assert hooks["integrate-check-system"]["language"] == "system"


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path):
    # the hook repository must be a git repository: pre-commit clones it (with our uncommitted changes)
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout of integrate")
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "good.py").write_text("import torch\n\nx = torch.zeros(2).flatten()\n")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "good")
    cmd = [*_pre_commit(), "try-repo", str(ROOT), "integrate-check-system", "--all-files"]
    ok = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (project / "bad.py").write_text("from einops import rearrange\n")
    _git(project, "add", "-A")
    bad = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "bad.py:1:1: M001" in bad.stdout and "Failed" in bad.stdout


def test_github_actions_example_uploads_sarif(tmp_path):
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert doc["permissions"]["security-events"] == "write"
    steps = doc["jobs"]["check"]["steps"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == "integrate.sarif"
    check = next(s for s in steps if "--format sarif" in s.get("run", ""))

    # a checkout with a base branch and a change on top, as actions/checkout leaves it
    repo = tmp_path / "checkout"
    pkg = repo / "src" / "diffusers" / "models"
    pkg.mkdir(parents=True)
    (repo / "src" / "diffusers" / "__init__.py").write_text("")
    (pkg / "old.py").write_text("from einops import rearrange\n")  # already on main: not this PR's
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    (pkg / "new_model.py").write_text("import torch.nn.functional as F\n\n\ndef f(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v)\n")
    script = check["run"].replace("${{ github.base_ref || 'main' }}", "main")
    proc = subprocess.run(["bash", "-ec", script], cwd=repo, capture_output=True, text=True, env=_env(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr  # findings do not stop the upload
    sarif = json.loads((repo / "integrate.sarif").read_text())
    _validate_sarif(sarif)
    results = sarif["runs"][0]["results"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"src/diffusers/models/new_model.py"}
    assert {r["ruleId"] for r in results} == {"M002"}
