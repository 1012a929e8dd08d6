"""The refinement tools: each does its job inside the workspace and refuses to leave it."""

import pytest

from agent.llm.tools import Workspace, call_tool, file_tools
from agent.skills import load_skills


@pytest.fixture
def tools(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "model.py").write_text("class A:\n    x = 1\n\nclass B:\n    x = 1\n")
    (tmp_path / "secret.txt").write_text("do not read")
    return file_tools(Workspace(ws), load_skills()), ws, tmp_path


def test_file_tools_work_inside(tools):
    t, ws, _ = tools
    assert call_tool(t, "write_file", {"path": "pkg/new.py", "content": "y = 2\n"}) == ("wrote pkg/new.py (6 characters)", False)
    assert "pkg/new.py" in call_tool(t, "list_files", {})[0]
    assert call_tool(t, "read_file", {"path": "pkg/new.py"}) == ("y = 2\n", False)
    assert call_tool(t, "search_code", {"pattern": r"^class \w"})[0].count("model.py") == 2
    assert "Model conventions" in call_tool(t, "read_skill", {"name": "models"})[0]


def test_edit_file_needs_an_exact_unique_old_string(tools):
    t, ws, _ = tools
    text, err = call_tool(t, "edit_file", {"path": "model.py", "old": "x = 1", "new": "x = 2"})
    assert err and "occurs 2 times" in text
    text, err = call_tool(t, "edit_file", {"path": "model.py", "old": "z = 9", "new": "x = 2"})
    assert err and "not found" in text
    assert call_tool(t, "edit_file", {"path": "model.py", "old": "class B:\n    x = 1", "new": "class B:\n    x = 3"}) == ("edited model.py", False)
    assert "x = 3" in (ws / "model.py").read_text()


@pytest.mark.parametrize("tool, args", [
    ("read_file", {"path": "{abs}"}),
    ("read_file", {"path": "../secret.txt"}),
    ("read_file", {"path": "link/secret.txt"}),
    ("write_file", {"path": "../escaped.py", "content": "x"}),
    ("write_file", {"path": "link/escaped.py", "content": "x"}),
    ("edit_file", {"path": "../secret.txt", "old": "do", "new": "did"}),
    ("list_files", {"path": ".."}),
    ("search_code", {"pattern": "read", "path": "../secret.txt"}),
])
def test_every_file_tool_refuses_to_leave_the_workspace(tools, tool, args):
    t, ws, outside = tools
    (ws / "link").symlink_to(outside)
    args = {k: v.replace("{abs}", str(outside / "secret.txt")) for k, v in args.items()}
    text, err = call_tool(t, tool, args)
    assert err and ("refused" in text or "leaves the workspace" in text), text
    assert (outside / "secret.txt").read_text() == "do not read"
    assert not (outside / "escaped.py").exists()


def test_bad_calls_are_answered_not_raised(tools):
    t, _, _ = tools
    assert call_tool(t, "rm_rf", {}) [1] is True
    assert "missing path" in call_tool(t, "read_file", {})[0]
    assert "unknown mode" in call_tool(t, "read_file", {"path": "model.py", "mode": "x"})[0]
    assert call_tool(t, "read_file", "not an object")[1] is True
    assert "invalid regular expression" in call_tool(t, "search_code", {"pattern": "("})[0]


def test_tool_specs_have_schemas(tools):
    t, _, _ = tools
    for tool in t.values():
        spec = tool.spec()
        assert spec["input_schema"]["type"] == "object" and spec["description"]
