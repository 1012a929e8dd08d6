"""A run killed with SIGKILL (or interrupted with Ctrl-C) resumes where it stopped."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import EXAMPLE, integrate


def _default_sigint() -> None:
    """A shell that runs pytest in the background (or a test worker) ignores SIGINT, and the child
    would inherit that: the run must see Ctrl-C as a user's terminal delivers it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ANTHROPIC_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", str(EXAMPLE), "--out", "out/tiny-dit", "--llm", "none", "--run-id", "killed"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _wait_for_stage(run_json, stage, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended before reaching {stage}: {proc.stderr.read().decode()}")
        try:
            data = json.loads(run_json.read_text())
            if data["stage_reached"] == stage:
                return data
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"stage {stage} not reached")


def test_resume_after_kill_9(tmp_path):
    proc = _start(tmp_path)
    run_json = tmp_path / "runs" / "killed" / "run.json"
    _wait_for_stage(run_json, "convert", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    before = json.loads(run_json.read_text())
    assert before["stages"]["convert"]["status"] == "running"
    done_before = {k: v["finished"] for k, v in before["stages"].items() if v["status"] == "done"}
    assert list(done_before) == ["resolve", "analyze", "plan", "scaffold", "port", "blocks", "conventions", "refine"]

    resumed = integrate("resume", str(tmp_path / "runs" / "killed"), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(run_json.read_text())
    assert after["status"] == "passed"
    for stage, finished in done_before.items():
        assert after["stages"][stage]["finished"] == finished, f"{stage} was redone"
    assert "already done" in resumed.stderr
    assert json.loads(resumed.stdout)["parity"]["passed"] is True
    assert (tmp_path / "out" / "tiny-dit" / "weights" / "diffusion_pytorch_model.safetensors").is_file()


def test_ctrl_c_says_how_to_resume(tmp_path):
    proc = _start(tmp_path)
    _wait_for_stage(tmp_path / "runs" / "killed" / "run.json", "port", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "integrate resume" in err.decode()
    resumed = integrate("resume", str(tmp_path / "runs" / "killed"), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_resume_of_unknown_folder(tmp_path):
    proc = integrate("resume", str(tmp_path / "nothing"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "not a run folder" in proc.stderr
