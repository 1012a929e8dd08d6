"""--target: diffusers' repository checks on the run's branch. The scripts here are small
synthetic ones standing in for utils/*.py (the wheel has none): they exercise how each is found,
run (sandboxed, on a copy), judged and compared with the base commit.
tests/test_target_real_repo.py runs diffusers' real scripts where a clone is at hand."""

import json

import git

from agent.repo_checks import NOT_PRESENT, PRE_EXISTING, markdown_table, run_repo_checks
from agent.run_state import Run

SCRIPTS = {
    # passes
    "utils/check_dummies.py": "print('dummies up to date')\n",
    # fails only on the branch: it objects to the new model file
    "utils/check_copies.py": (
        "import os, sys\n"
        "if os.path.exists('src/diffusers/models/transformers/transformer_tiny_test.py'):\n"
        "    sys.exit('copy does not match for transformer_tiny_test')\n"
    ),
    # broken before the branch existed (diffusers' own check_repo.py does not import today)
    "utils/check_repo.py": "raise ImportError('cannot import name get_values')\n",
    # writes where it runs: must never reach the branch
    "utils/check_inits.py": "open('written_by_check.txt', 'w').write('x')\n",
    # reads the PR's files on stdin, as diffusers' labeler feeds it
    "utils/check_test_missing.py": (
        "import json, sys\n"
        "files = json.load(sys.stdin)\n"
        "added = {f['filename'] for f in files if f['status'] == 'added'}\n"
        "sys.exit(0 if any(f.startswith('tests/') for f in added) else 'missing-tests')\n"
    ),
}
MODEL = "import torch\n\n\nclass TinyTest(torch.nn.Module):\n    pass\n"
TEST = "from diffusers import TinyTest  # noqa: F401\n"


def _run_on_branch(tmp_path, checkout, model_source=MODEL):
    for rel, text in SCRIPTS.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    repo = git.Repo(checkout)
    repo.git.add(A=True)
    repo.index.commit("utils scripts")
    workspace = tmp_path / "run" / "workspace"
    repo.git.worktree("add", "-b", "integrate/tiny-test", str(workspace), "HEAD")
    branch = git.Repo(workspace)
    (workspace / "src/diffusers/models/transformers/transformer_tiny_test.py").write_text(model_source)
    branch.git.add(A=True)
    sha = branch.index.commit("Scaffold").hexsha
    # written after the commit, as verify writes the test: still part of the branch's changes
    (workspace / "tests/models/transformers/test_models_transformer_tiny_test.py").write_text(TEST)
    run = Run.create(tmp_path / "runs", {"source": "tiny-test"})
    run.start_stage("scaffold")
    run.finish_stage("scaffold", {"workspace": str(workspace), "commit": sha}, 0.0)
    return run, workspace


def test_each_check_is_found_run_and_judged(tmp_path, diffusers_checkout):
    run, workspace = _run_on_branch(tmp_path, diffusers_checkout)
    result = run_repo_checks(run)
    by_name = {r["name"]: r for r in result["checks"]}

    assert by_name["check_dummies"]["status"] == "passed" and "dummies up to date" in by_name["check_dummies"]["output_tail"]
    assert by_name["check_copies"]["status"] == "failed" and by_name["check_copies"]["passed"] is False
    assert "transformer_tiny_test" in by_name["check_copies"]["output_tail"]
    assert by_name["check_repo"]["status"] == PRE_EXISTING and by_name["check_repo"]["base"]["returncode"] != 0
    assert by_name["check_inits"]["status"] == "passed"
    assert by_name["check_test_missing"]["status"] == "passed"
    for absent in ("check_support_list", "check_forward_call_docstrings", "check_doc_toc"):
        assert by_name[absent]["status"] == NOT_PRESENT and by_name[absent]["ran"] is False and by_name[absent]["passed"] is None
    assert by_name["ruff check"]["status"] == "passed" and by_name["ruff format --check"]["status"] == "passed"

    assert result["blocking"] == ["check_copies"] and result["passed"] is False and result["complete"] is False
    assert result["changed"]["tests/models/transformers/test_models_transformer_tiny_test.py"] == "added"
    assert result["changed"]["src/diffusers/models/transformers/transformer_tiny_test.py"] == "added"
    # the checks ran on a copy: nothing they wrote is in the branch
    assert not (workspace / "written_by_check.txt").exists()
    assert not git.Repo(workspace).is_dirty(untracked_files=False)
    table = markdown_table(result)
    assert f"| `check_support_list` | CI: repository consistency | {NOT_PRESENT} |" in table
    assert json.loads(run.path("repo_checks", "summary.json").read_text())["blocking"] == ["check_copies"]


def test_ruff_uses_the_checkout_settings_on_changed_files_only(tmp_path, diffusers_checkout):
    # an unused import in the model file; the checkout's (diffusers') settings select F401
    run, _ = _run_on_branch(tmp_path, diffusers_checkout, model_source="import os\n\nimport torch\n\n\nclass TinyTest(torch.nn.Module):\n    pass\n")
    rows = {r["name"]: r for r in run_repo_checks(run)["checks"]}
    assert rows["ruff check"]["status"] == "failed" and "F401" in rows["ruff check"]["output_tail"]
    assert "transformer_tiny_test.py" in rows["ruff check"]["output_tail"]
    assert "__init__.py" not in rows["ruff check"]["output_tail"]  # unchanged files are not judged
