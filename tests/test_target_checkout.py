"""--target: a branch in a diffusers checkout whose new class imports with `from diffusers import`."""

import json
import subprocess
import sys

import git
from conftest import EXAMPLE, integrate


def test_port_lands_on_a_branch_and_imports_from_diffusers(tmp_path, diffusers_checkout):
    repo = git.Repo(diffusers_checkout)
    head_before = repo.head.commit.hexsha
    proc = integrate(str(EXAMPLE), "--target", str(diffusers_checkout), "--llm", "none", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    branch = summary["publish"]["branch"]
    assert branch == "integrate/tiny-dit"

    # The user's checkout is untouched: same branch, same commit, clean.
    assert repo.active_branch.name == "main"
    assert repo.head.commit.hexsha == head_before
    assert not repo.is_dirty(untracked_files=True)

    commits = list(repo.iter_commits(f"main..{branch}"))
    assert len(commits) == 5  # scaffold, port, blocks, conventions, publish
    changed = set(repo.git.diff("--name-only", f"main...{branch}").split())
    assert "src/diffusers/models/transformers/transformer_tiny_dit.py" in changed
    assert {"src/diffusers/__init__.py", "src/diffusers/models/__init__.py", "src/diffusers/models/transformers/__init__.py"} <= changed

    repo.git.checkout(branch)
    script = (
        "import diffusers\n"
        "from diffusers import TinyDiTTransformer2DModel\n"
        "from diffusers.models import TinyDiTTransformer2DModel as M2\n"
        "assert TinyDiTTransformer2DModel is M2\n"
        "print(diffusers.__file__)\n"
    )
    env = {"PYTHONPATH": str(diffusers_checkout / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(diffusers_checkout / "src" / "diffusers"))

    # Both halves of the lazy import machinery were edited.
    init = (diffusers_checkout / "src" / "diffusers" / "models" / "__init__.py").read_text()
    assert '_import_structure["transformers.transformer_tiny_dit"] = ["TinyDiTTransformer2DModel"]' in init
    top = (diffusers_checkout / "src" / "diffusers" / "__init__.py").read_text()
    assert top.count("TinyDiTTransformer2DModel") == 2

    # what diffusers' CI asks of a new model: its dummy, a docs page in the toc, the test at its path
    from agent.diffusers_repo.dummies import stale_dummy_files

    assert stale_dummy_files(diffusers_checkout / "src") == {}
    assert "class TinyDiTTransformer2DModel(metaclass=DummyObject):" in (diffusers_checkout / "src/diffusers/utils/dummy_pt_objects.py").read_text()
    page = (diffusers_checkout / "docs/source/en/api/models/transformer_tiny_dit.md").read_text()
    assert "[[autodoc]] TinyDiTTransformer2DModel" in page and "from TinyDiT." in page
    assert "local: api/models/transformer_tiny_dit" in (diffusers_checkout / "docs/source/en/_toctree.yml").read_text()
    assert {"src/diffusers/utils/dummy_pt_objects.py", "docs/source/en/api/models/transformer_tiny_dit.md",
            "docs/source/en/_toctree.yml", "tests/models/transformers/test_models_transformer_tiny_dit.py"} <= changed
    generated = (diffusers_checkout / "tests/models/transformers/test_models_transformer_tiny_dit.py").read_text()
    assert "from ..testing_utils import (" in generated and "ModelTesterMixin" in generated and "REFERENCE_OUTPUTS" in generated
    assert "/work/" not in repo.git.show(f"{branch}:src/diffusers/models/transformers/transformer_tiny_dit.py")
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    generated_test = run["stages"]["verify"]["result"]["generated_test"]
    assert generated_test["passed"] and generated_test["parity_passed"] and generated_test["style"] == "config"

    pr = (tmp_path / "runs" / summary["run_id"] / "PR.md").read_text()
    assert "Registered in both halves" in pr
    assert "from diffusers import TinyDiTTransformer2DModel" in pr and 'from_pretrained("../converted")' in pr
    usage = run["stages"]["verify"]["result"]["usage"]
    assert usage["run_by"] == "verify" and usage["passed"], usage.get("output")
    assert "Executed as shown: verify ran this code in the sandbox" in pr
    patch = (tmp_path / "runs" / summary["run_id"] / "changes.patch").read_text()
    assert patch.count("Subject: [PATCH") == 5
