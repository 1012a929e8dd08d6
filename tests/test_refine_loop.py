"""The refinement loop end to end: the real CLI, scripted sessions, and the real anthropic SDK
against the stand-in Messages API (faults, kills and resumes included)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest
from anthropic_server import MessagesStandIn, message, script_actions, tool_results
from conftest import EXAMPLE, ROOT, integrate

sys.path.insert(0, str(ROOT / "examples"))
import make_refine_session as session  # noqa: E402

SCRIPT = EXAMPLE / "refine_names.jsonl"
API_KEY = "sk-ant-api03-standin-secret-0123456789"
RETRY_NOW = {"retry-after": "0"}


def _write_script(path: Path, turns: list[dict]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in turns))
    return path


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "refine" / "trajectory.jsonl").read_text().splitlines()]


def _assert_no_secret(*folders: Path) -> None:
    for folder in folders:
        for p in folder.rglob("*"):
            if p.is_file() and ".git" not in p.parts:
                assert API_KEY.encode() not in p.read_bytes(), p


def test_example_script_is_current():
    """The bundled session is what examples/make_refine_session.py writes."""
    assert SCRIPT.read_text() == "".join(json.dumps(t) + "\n" for t in session.SESSION)


def test_scripted_refinement_renames_keeps_parity_and_commits(tmp_path):
    proc = integrate(str(EXAMPLE), "--out", "out", "--llm", f"scripted:{SCRIPT}", "--run-id", "r", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    refinement = summary["refinement"]
    assert refinement["status"] == "refined" and summary["parity"]["passed"] is True
    assert "transformer_blocks" in refinement["summary"]

    out = tmp_path / "out"
    model = (out / "transformer_tiny_dit.py").read_text()
    assert "self.transformer_blocks = nn.ModuleList" in model and "self.blocks" not in model
    repo = git.Repo(out)
    assert refinement["checkpoints"] and refinement["checkpoints"][0] in {c.hexsha for c in repo.iter_commits()}
    assert not repo.is_dirty(untracked_files=True)
    mapping = (out / "_weight_mapping.py").read_text()  # the converted checkpoint follows the split
    assert "'blocks.0.attn.qkv.weight': [('transformer_blocks.0.attn.to_q.weight', 0, 64), ('transformer_blocks.0.attn.to_k.weight', 64, 128)" in mapping
    assert "'final_layer.adaLN_modulation.1.weight': ('norm_out.linear.weight', 2, (1, 0))" in mapping
    pr = (out / "PR.md").read_text()
    assert "**refined**" in pr and "transformer_blocks" in pr
    assert "cache hit" in proc.stderr and "$" in proc.stderr  # the summary shows the cost


def test_cost_accounting_from_known_usage(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"claude-standin": {"input": 2.0, "output": 10.0, "cache_write": 2.5, "cache_read": 0.2}}))
    proc = integrate(str(EXAMPLE), "--out", "out", "--llm", f"scripted:{SCRIPT}", "--model", "claude-standin",
                     "--prices", str(prices), "--run-id", "r", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    usage = json.loads(proc.stdout)["refinement"]["usage"]
    turns = [t["usage"] for t in session.SESSION]
    plain, written, read, output = (sum(u[k] for u in turns) for k in
                                    ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"))
    assert (plain, written, read, output) == (4540, 5400, 30800, 580)
    assert usage["turns"] == 5
    assert usage["total_tokens"] == plain + written + read + output
    assert usage["dollars"] == pytest.approx((4540 * 2.0 + 580 * 10.0 + 5400 * 2.5 + 30800 * 0.2) / 1e6)
    assert usage["cache_hit_ratio"] == pytest.approx(30800 / (4540 + 5400 + 30800), abs=1e-4)
    costs = [e["cost"] for e in _events(tmp_path / "runs" / "r") if e["type"] == "assistant"]
    assert costs[0] == pytest.approx((1200 * 2.0 + 5400 * 2.5 + 60 * 10.0) / 1e6)  # per turn, in the trajectory


def test_parity_breaking_session_is_reverted_to_last_green(tmp_path):
    broken = session.tool_use(20, "edit_file", path=session.MODEL, old="    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)",
                              new="    return x * scale.unsqueeze(1) + shift.unsqueeze(1)")
    u = session.usage(100, 0, 1000, 50)
    script = _write_script(tmp_path / "break.jsonl", [
        *session.SESSION[1:3],  # the renames, then run_parity: a green checkpoint
        session.turn(session.text("Simplify modulate."), broken, usage=u),
        session.turn(session.tool_use(21, "finish", summary="simplified modulate"), usage=u),
        session.turn(session.tool_use(22, "run_parity"), usage=u),
        session.turn(session.tool_use(23, "read_file", path=session.MODEL), usage=u),
    ])
    proc = integrate(str(EXAMPLE), "--out", "out", "--llm", f"scripted:{script}", "--max-turns", "5", "--run-id", "r", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error: ")][-1]
    assert "turn limit (5 turns)" in error and "parity failing" in error and "last green checkpoint" in error
    assert "edit_file transformer_tiny_dit.py" in error and "finish: finish refused" in error

    events = _events(tmp_path / "runs" / "r")
    green = [e["commit"] for e in events if e["type"] == "checkpoint"]
    assert len(green) == 1
    repo = git.Repo(tmp_path / "out")
    assert repo.head.commit.hexsha == green[0] and not repo.is_dirty(untracked_files=True)
    model = (tmp_path / "out" / "transformer_tiny_dit.py").read_text()
    assert "self.transformer_blocks" in model and "x * (1 + scale.unsqueeze(1))" in model  # the green renames kept, the break undone
    refused = [r for e in events if e["type"] == "tool_results" for r in e["results"] if r["name"] == "finish"]
    assert refused[0]["is_error"] and "parity FAILED" in refused[0]["content"]  # the report went back to the model
    summary = json.loads((tmp_path / "runs" / "r" / "refine" / "summary.json").read_text())
    assert summary["status"] == "reverted" and summary["usage"]["turns"] == 5

    # resuming a reverted session starts a new one and keeps the old record beside it
    again = integrate("resume", str(tmp_path / "runs" / "r"), cwd=tmp_path)
    assert again.returncode == 1 and "turn limit" in again.stderr
    assert (tmp_path / "runs" / "r" / "refine" / "trajectory.1.jsonl").is_file()
    assert repo.head.commit.hexsha == green[0]  # its edits failed parity too: back at the same green checkpoint
    assert "x * (1 + scale.unsqueeze(1))" in (tmp_path / "out" / "transformer_tiny_dit.py").read_text()


@pytest.fixture
def api(monkeypatch):
    with MessagesStandIn() as server:
        yield server


def _api_env(server) -> dict:
    return {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": API_KEY}


def test_faults_are_retried_or_answered_and_the_run_finishes(tmp_path, api):
    u = session.usage(100, 0, 1000, 30)
    real = script_actions(SCRIPT)
    api.actions = [
        {"status": 429, "headers": RETRY_NOW}, real[0],
        {"status": 529, "headers": RETRY_NOW},
        # a tool call cut off by max_tokens: its input is incomplete
        message([session.text("Writing the new file"), session.tool_use(30, "write_file", path=session.MODEL)], "max_tokens", u),
        {"status": 500, "headers": RETRY_NOW},
        message([session.tool_use(31, "read_file", path=7), session.tool_use(32, "edit_file", path=session.MODEL, old="x")], "tool_use", u),
        message([session.tool_use(33, "list_files")], "tool_use", u),
        {"delay": 4, "then": message([session.tool_use(34, "delete_everything", path=".")], "tool_use", u)},
        message([session.tool_use(34, "delete_everything", path=".")], "tool_use", u),
        message([session.tool_use(35, "write_file", path="../escaped.py", content="print('out')")], "tool_use", u),
        *real[1:],
    ]
    proc = integrate(str(EXAMPLE), "--out", "out", "--llm", "anthropic", "--llm-timeout", "1.5", "--run-id", "r", "--json",
                     cwd=tmp_path, env=_api_env(api))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["refinement"]["status"] == "refined"
    assert api.rejected == []  # every request the loop sent was a valid conversation
    answers = tool_results(api)
    assert answers["toolu_30"]["is_error"] and "cut off by max_tokens" in answers["toolu_30"]["content"]
    assert answers["toolu_31"]["is_error"] and "path must be a string" in answers["toolu_31"]["content"]
    assert answers["toolu_32"]["is_error"] and "missing new" in answers["toolu_32"]["content"]
    assert not answers["toolu_33"]["is_error"]
    assert answers["toolu_34"]["is_error"] and "unknown tool 'delete_everything'" in answers["toolu_34"]["content"]
    assert answers["toolu_35"]["is_error"] and "leaves the workspace" in answers["toolu_35"]["content"]
    assert not (tmp_path / "escaped.py").exists()
    # the system prompt and tools are a cached prefix, and the newest message carries a breakpoint
    body = api.requests[-1]["body"]
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"} and body["tools"][-1]["cache_control"]
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    _assert_no_secret(tmp_path / "runs", tmp_path / "out")


def _wait(predicate, proc, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {what}: {proc.stderr.read().decode()[-2000:]}")
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_mid_turn_resumes_with_every_tool_use_answered(tmp_path, api):
    u = session.usage(100, 0, 1000, 30)
    real = script_actions(SCRIPT)
    sleeper = message([session.tool_use(40, "run_python", code="import time\ntime.sleep(120)", timeout=200)], "tool_use", u)
    api.actions = [real[0], sleeper, real[1], {"delay": 120, "then": real[2]}, real[2], *real[3:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ANTHROPIC_"))} | _api_env(api)
    run_dir = tmp_path / "runs" / "r"

    def start(*args):
        return subprocess.Popen([sys.executable, "-m", "agent.cli", *args], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def kill(proc):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    # 1. killed while a tool runs: the model asked for run_python, no result was recorded
    proc = start(str(EXAMPLE), "--out", "out", "--llm", "anthropic", "--run-id", "r")
    trajectory = run_dir / "refine" / "trajectory.jsonl"
    _wait(lambda: trajectory.exists() and any(e["type"] == "assistant" and e["turn"] == 2 for e in _events(run_dir)), proc, "turn 2")
    time.sleep(1.0)
    kill(proc)
    assert _events(run_dir)[-1]["type"] == "assistant"  # the tool_use is unanswered on disk

    # 2. resumed, then killed while waiting for the model's answer
    proc = start("resume", str(run_dir))
    _wait(lambda: len(api.requests) >= 4, proc, "the fourth request")
    kill(proc)

    # 3. resumed to the end
    done = integrate("resume", str(run_dir), "--json", cwd=tmp_path, env=_api_env(api))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["refinement"]["status"] == "refined"
    assert api.rejected == []
    answers = tool_results(api)
    assert answers["toolu_40"]["is_error"] and "run stopped while this call was in progress" in answers["toolu_40"]["content"]
    events = _events(run_dir)
    assert [e["type"] for e in events].count("resume") == 2
    assert [e["turn"] for e in events if e["type"] == "assistant"] == [1, 2, 3, 4, 5, 6]  # no turn lost or doubled
    assert "self.transformer_blocks" in (tmp_path / "out" / "transformer_tiny_dit.py").read_text()
    _assert_no_secret(tmp_path / "runs", tmp_path / "out")


def test_api_down_after_retries_pauses_and_resume_continues(tmp_path, api):
    real = script_actions(SCRIPT)
    api.actions = [real[0], *[{"status": 500, "headers": RETRY_NOW}] * 6]  # more than the SDK's retries
    proc = integrate(str(EXAMPLE), "--out", "out", "--llm", "anthropic", "--run-id", "r", cwd=tmp_path, env=_api_env(api))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "refinement paused: Anthropic API error 500" in proc.stderr and "integrate resume" in proc.stderr
    events = _events(tmp_path / "runs" / "r")
    assert events[-1]["type"] == "paused" and [e["turn"] for e in events if e["type"] == "assistant"] == [1]

    api.actions = real[1:]
    done = integrate("resume", str(tmp_path / "runs" / "r"), "--json", cwd=tmp_path, env=_api_env(api))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["refinement"]["status"] == "refined" and summary["refinement"]["usage"]["turns"] == 5
    assert api.rejected == []


def test_refinement_on_a_diffusers_checkout_branch(tmp_path, diffusers_checkout):
    """--target: the loop edits the model file inside the worktree; the green checkpoint is a
    commit on the new branch, and the user's checkout is untouched."""
    in_tree = "src/diffusers/models/transformers/" + session.MODEL

    def retarget(block):
        if block.get("type") == "tool_use" and "path" in block["input"]:
            return {**block, "input": {**block["input"], "path": in_tree}}
        return block

    turns = [{**t, "content": [retarget(b) for b in t["content"]]} for t in session.SESSION]
    script = _write_script(tmp_path / "in_tree.jsonl", turns)
    repo = git.Repo(diffusers_checkout)
    head = repo.head.commit.hexsha
    proc = integrate(str(EXAMPLE), "--target", str(diffusers_checkout), "--llm", f"scripted:{script}", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["refinement"]["status"] == "refined" and summary["parity"]["passed"]
    branch = summary["publish"]["branch"]
    assert repo.head.commit.hexsha == head and not repo.is_dirty(untracked_files=True)
    messages = [c.message for c in repo.iter_commits(f"main..{branch}")]
    assert any(m.startswith("Refine: green checkpoint") for m in messages)
    assert "self.transformer_blocks = nn.ModuleList" in repo.git.show(f"{branch}:{in_tree}")
