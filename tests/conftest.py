from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import git
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tiny-dit"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def integrate(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh process, the way a user does."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ANTHROPIC_"))}
    full_env["HF_HUB_OFFLINE"] = "1"  # nothing in tests reaches the network
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the bundled example, free to break."""
    dest = tmp_path / "tiny-dit"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="session")
def diffusers_checkout_template(tmp_path_factory) -> Path:
    """A git repository built from the installed diffusers package: src/diffusers, committed."""
    import diffusers

    root = tmp_path_factory.mktemp("diffusers-template") / "diffusers"
    shutil.copytree(Path(diffusers.__file__).parent, root / "src" / "diffusers", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "setup.py").write_text("# stand-in for diffusers' setup.py\n")
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test Maintainer")
        cw.set_value("user", "email", "maintainer@example.com")
    repo.git.add(A=True)
    repo.index.commit("diffusers source")
    return root


@pytest.fixture
def diffusers_checkout(diffusers_checkout_template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "diffusers"
    shutil.copytree(diffusers_checkout_template, dest, symlinks=True)
    return dest
