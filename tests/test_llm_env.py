"""RefineEnv on its own: wall-time caps inside a turn, the checks surviving hostile source, and
git through agent.gitsafe on a repository whose git dir is outside the workspace."""

import subprocess
import time

import pytest
from conftest import EXAMPLE

from agent.gitsafe import GitError, init_separate
from agent.llm.env import RefineEnv
from agent.llm.tools import call_tool
from agent.skills import load_skills


@pytest.fixture
def env(tmp_path):
    work = tmp_path / "out"
    work.mkdir()
    (work / "model.py").write_text("x = 1\n")
    init_separate(work, tmp_path / "out.git").commit_all("first")
    asked = []

    def parity(timeout_s=None):
        asked.append(timeout_s)
        return {"passed": True, "max_abs_diff": 0.0, "cosine": 1.0, "tolerance": {}, "problems": []}

    e = RefineEnv(work, skills=load_skills(), parity=parity, check_files=[work / "model.py"], scratch=tmp_path / "scratch",
                  ro_paths=[], python_path=work)
    e.asked = asked
    return e


def test_parity_gets_what_is_left_of_the_wall_time(env):
    tools = env.tools()
    env.deadline = time.monotonic() + 30
    call_tool(tools, "write_file", {"path": "model.py", "content": "x = 2\n"})
    text, err = call_tool(tools, "run_parity", {})
    assert not err and "green checkpoint committed" in text
    assert 25 < env.asked[-1] <= 30
    env.deadline = time.monotonic() + 0.5
    for name, args in (("run_parity", {}), ("run_python", {"code": "print(1)"}), ("run_checks", {})):
        text, err = call_tool(tools, name, args)
        assert err and text == f"{name} not run: the session's wall-time budget (--max-wall) is spent"
    assert len(env.asked) == 1


def test_run_python_timeout_is_cut_to_the_wall_time_left(env):
    env.deadline = time.monotonic() + 3
    text, err = call_tool(env.tools(), "run_python", {"code": "import time\ntime.sleep(60)", "timeout": 120})
    assert err and "stopped: timeout" in text and "timeout cut to 3 s" in text


def test_checks_answer_when_the_source_is_too_deep_for_ast(env):
    """An expression nested past ast's recursion limit: an answer (E999, or why the checks could
    not run), never an exception out of the tool."""
    model = (EXAMPLE / "tiny_dit.py").read_text() + "x = " + " + ".join(["1"] * 100_000) + "\n"
    (env.ws.root / "model.py").write_text(model)
    text, err = call_tool(env.tools(), "run_checks", {})
    assert text.startswith("the convention checks could not run: RecursionError") or "E999" in text, text[:300]


def test_revert_drops_what_the_model_added(env):
    tools = env.tools()
    base = env.head()
    call_tool(tools, "write_file", {"path": "extra/new.py", "content": "y = 1\n"})
    call_tool(tools, "write_file", {"path": "model.py", "content": "x = 9\n"})
    assert env.dirty()
    env.revert(base)
    assert not env.dirty() and not (env.ws.root / "extra").exists() and (env.ws.root / "model.py").read_text() == "x = 1\n"
    assert (env.ws.root / ".git").is_file()  # the pointer, untouched by reset and clean


def test_env_refuses_a_workspace_whose_git_dir_is_inside_it(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / "m.py").write_text("x = 1\n")
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    with pytest.raises(GitError, match="found a folder"):
        RefineEnv(work, skills={}, parity=lambda: {}, check_files=[], scratch=tmp_path / "s", ro_paths=[], python_path=work)
