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


STANDINS = Path(__file__).resolve().parent / "diffusers_standins"
# diffusers' ruff settings (its pyproject.toml), for the checkout built from the wheel
DIFFUSERS_RUFF_SETTINGS = """[tool.ruff]
line-length = 119

[tool.ruff.lint]
ignore = ["C901", "E501", "E721", "E741", "F402", "F823"]
select = ["C", "E", "F", "I", "W"]

[tool.ruff.lint.per-file-ignores]
"__init__.py" = ["E402", "F401", "F403", "F811"]
"src/diffusers/utils/dummy_*.py" = ["F401"]

[tool.ruff.lint.isort]
lines-after-imports = 2
known-first-party = ["diffusers"]
"""


def _family_toc(package: Path, family: str) -> list[dict]:
    """Docs toc entries of a model family, from the classes its `__init__` imports, sorted by
    title as diffusers' utils/check_doc_toc.py keeps them."""
    import ast

    tree = ast.parse((package / "models" / family / "__init__.py").read_text())
    entries = {
        alias.name: f"api/models/{node.module}"
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
        for alias in node.names if alias.name[:1].isupper()
    }
    return [{"local": local, "title": title} for title, local in sorted(entries.items(), key=lambda e: e[0].lower())]


def write_docs_toc(root: Path, package: Path) -> None:
    """docs/source/en/_toctree.yml with diffusers' structure (API > Models > Transformers, UNets)."""
    import yaml

    models = [{"local": "api/models/overview", "title": "Overview"},
              {"sections": _family_toc(package, "transformers"), "title": "Transformers"},
              {"sections": _family_toc(package, "unets"), "title": "UNets"}]
    toc = [{"sections": [{"local": "index", "title": "Diffusers"}], "title": "Get started"},
           {"isExpanded": False, "sections": [{"sections": models, "title": "Models"}], "title": "API"}]
    path = root / "docs" / "source" / "en" / "_toctree.yml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.dump(toc, allow_unicode=True))


@pytest.fixture(scope="session")
def diffusers_checkout_template(tmp_path_factory) -> Path:
    """A git repository built from the installed diffusers package: src/diffusers, plus what the
    wheel lacks and a port needs: diffusers' ruff settings, a docs toc with diffusers' structure
    and stand-ins for the tests package and its tester mixins (tests/diffusers_standins). No
    utils/: diffusers' repository scripts are not in the wheel."""
    import diffusers

    root = tmp_path_factory.mktemp("diffusers-template") / "diffusers"
    package = Path(diffusers.__file__).parent
    shutil.copytree(package, root / "src" / "diffusers", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "setup.py").write_text("# stand-in for diffusers' setup.py\n")
    (root / "pyproject.toml").write_text(DIFFUSERS_RUFF_SETTINGS)
    shutil.copytree(STANDINS / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    write_docs_toc(root, package)
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


@pytest.fixture(scope="session")
def folder_checkout_template(diffusers_checkout_template: Path, tmp_path_factory) -> Path:
    """The same diffusers with DiT moved into the model-folder layout (tests/layout_checkouts.py);
    copy it before changing it."""
    from layout_checkouts import make_folder_checkout

    return make_folder_checkout(diffusers_checkout_template, tmp_path_factory.mktemp("folder-template") / "diffusers")
