"""The refinement tools: each does its job inside the workspace and refuses to leave it."""

import os

import pytest

from agent.llm.tools import MAX_FILE_BYTES, MAX_READ_BYTES, Workspace, call_tool, file_tools
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


@pytest.mark.parametrize("path, why", [
    ("a\x00b.py", "control character"),
    ("a\nb.py", "control character"),
    ("\ud800.py", "not valid UTF-8"),
    ("a\\b.py", "backslash"),
    ("x" * 1025, "longer than 1024"),
    ("y" * 256 + "/z.py", "255 bytes"),
    ("", "non-empty string"),
    ("/etc/passwd", "absolute paths are refused"),
    ("a/../../x.py", "leaves the workspace"),
])
def test_malformed_paths_are_one_line_tool_errors(tools, path, why):
    t, _, _ = tools
    for tool, args in (("read_file", {"path": path}), ("write_file", {"path": path, "content": "x"}), ("list_files", {"path": path})):
        text, err = call_tool(t, tool, args)
        assert err and why in text and "\n" not in text, (tool, text)


@pytest.mark.parametrize("path", [".git", ".git/config", ".GIT/HEAD", ".git./config", ".git /x", "git~1/config",
                                  "sub/.git/config", ".g\u200dit/hooks/pre-commit", "a/../.git/config"])
def test_git_metadata_is_off_limits_to_every_tool(tools, path):
    t, ws, _ = tools
    (ws / ".git").write_text("gitdir: /elsewhere\n")
    for tool, args in (("read_file", {"path": path}), ("write_file", {"path": path, "content": "x"}),
                       ("edit_file", {"path": path, "old": "gitdir", "new": "x"}), ("list_files", {"path": path}),
                       ("search_code", {"pattern": "x", "path": path})):
        text, err = call_tool(t, tool, args)
        assert err and "(.git) are off limits" in text, (tool, path, text)
    assert (ws / ".git").read_text() == "gitdir: /elsewhere\n"


def test_a_link_to_git_metadata_is_off_limits_too(tools):
    t, ws, _ = tools
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("[core]\n")
    (ws / "innocent").symlink_to(ws / ".git")
    text, err = call_tool(t, "write_file", {"path": "innocent/config", "content": "[core]\n\tfsmonitor = x\n"})
    assert err and "off limits" in text and (ws / ".git" / "config").read_text() == "[core]\n"


@pytest.mark.parametrize("path", [".gitattributes", "pkg/.gitmodules", ".gitignore", ".integrate-run", "sitecustomize.py",
                                  "usercustomize.py", "tests/conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini",
                                  "__pycache__/model.cpython-311.pyc", "model.pyc", "PyProject.toml"])
def test_files_read_by_git_python_or_pytest_are_read_only(tools, path):
    t, ws, _ = tools
    text, err = call_tool(t, "write_file", {"path": path, "content": "x"})
    assert err and "only the tool writes it" in text
    assert not (ws / path).exists()
    (ws / "setup.cfg").write_text("[metadata]\n")
    assert call_tool(t, "read_file", {"path": "setup.cfg"}) == ("[metadata]\n", False)  # reading them is fine


def test_listings_and_searches_leave_out_git_and_links(tools):
    t, ws, outside = tools
    (ws / ".git").mkdir()
    (ws / ".git" / "hook.py").write_text("class Secret: pass\n")
    (outside / "other.py").write_text("class Outside: pass\n")
    (ws / "linked.py").symlink_to(outside / "other.py")
    (ws / "linkdir").symlink_to(outside)
    listed = call_tool(t, "list_files", {})[0]
    assert "model.py" in listed and ".git" not in listed and "linked" not in listed and "other.py" not in listed
    found = call_tool(t, "search_code", {"pattern": "class"})[0]
    assert "Secret" not in found and "Outside" not in found and "model.py" in found


def test_special_files_are_never_opened_for_reading_or_writing(tools):
    t, ws, _ = tools
    os.mkfifo(ws / "pipe.py")  # reading a FIFO would block for ever
    for tool, args in (("read_file", {"path": "pipe.py"}), ("write_file", {"path": "pipe.py", "content": "x"}),
                       ("edit_file", {"path": "pipe.py", "old": "a", "new": "b"})):
        text, err = call_tool(t, tool, args)
        assert err, (tool, text)
    (ws / "inner.py").symlink_to(ws / "pipe.py")  # a link inside the workspace is judged by where it leads
    assert "not a regular file" in call_tool(t, "read_file", {"path": "inner.py"})[0]


def test_content_caps_and_text_checks(tools):
    t, ws, _ = tools
    assert "capped at 1,048,576 bytes" in call_tool(t, "write_file", {"path": "big.py", "content": "x" * (MAX_FILE_BYTES + 1)})[0]
    assert not (ws / "big.py").exists()
    assert call_tool(t, "write_file", {"path": "ok.py", "content": "x" * MAX_FILE_BYTES})[1] is False
    text, err = call_tool(t, "edit_file", {"path": "ok.py", "old": "xx", "new": "xxx"})
    assert err and "occurs" in text
    (ws / "ok.py").write_text("x" * (MAX_FILE_BYTES - 2) + "yy")
    text, err = call_tool(t, "edit_file", {"path": "ok.py", "old": "yy", "new": "yyyy"})
    assert err and "after the edit is 1,048,578 bytes" in text
    assert "NUL byte" in call_tool(t, "write_file", {"path": "n.py", "content": "a\x00"})[0]
    assert "lone surrogate" in call_tool(t, "write_file", {"path": "s.py", "content": "a\ud800"})[0]
    assert "content must be a string" in call_tool(t, "write_file", {"path": "s.py", "content": ["a"]})[0]
    (ws / "huge.txt").write_bytes(b"z" * (MAX_READ_BYTES + 10))
    text, err = call_tool(t, "read_file", {"path": "huge.txt"})
    assert not err and f"only the first {MAX_READ_BYTES:,} are shown" in text


def test_search_code_is_linear_time_and_says_what_re2_refuses(tools):
    t, ws, _ = tools
    (ws / "long.py").write_text("s = '" + "a" * 200_000 + "'\n")
    assert call_tool(t, "search_code", {"pattern": "(a+)+!", "path": "long.py"}) == ("(no matches)", False)  # hours in Python's re
    hit, err = call_tool(t, "search_code", {"pattern": r"(\w+\s?)*$", "path": "long.py"})
    assert not err and hit.startswith("long.py:1: ") and len(hit) < 400  # the matching line is shortened
    text, err = call_tool(t, "search_code", {"pattern": r"(x)\1"})
    assert err and "RE2 syntax" in text and "\\1" in text
    assert call_tool(t, "search_code", {"pattern": "a" * 1001})[0] == "pattern longer than 1000 characters"
