"""Pushing with real git: to bare repositories (file://) and over smart HTTP with the token as
Basic credentials; rejected pushes, overwrites only of what the tool pushed, and the token
kept out of every git argv."""

from __future__ import annotations

import base64
import os

import pytest
from github_server import GitHubStandIn
from publish_helpers import commit_on_branch, git, git_recorder, recorded_git_calls, small_repo

from agent.errors import IntegrateError
from agent.publish.push import display_url, fetch_ref, push_branch

TOKEN = "ghp_" + "A1b2C3d4" * 5


@pytest.fixture
def setup(tmp_path, monkeypatch):
    recorder, log = git_recorder(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{recorder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)  # present in our environment, as in a real run
    with GitHubStandIn(tmp_path / "github", clone_scheme="http") as gh:
        gh.add_user("alice", TOKEN)
        gh.add_repo("huggingface/diffusers", source=small_repo(tmp_path))
        fork = gh.add_repo("alice/diffusers", source=gh.repos["huggingface/diffusers"].bare)
        fork.parent = "huggingface/diffusers"
        yield gh, tmp_path / "checkout", log


def http_url(gh) -> str:
    return f"{gh.url}/git/alice/diffusers.git"


def test_push_over_http_authenticates_with_the_token_only_in_gits_environment(setup):
    gh, checkout, log = setup
    sha = commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    result = push_branch(checkout, http_url(gh), "integrate/x", TOKEN)
    assert result.pushed and not result.forced and result.local == sha
    assert gh.branch_head("alice/diffusers", "integrate/x") == sha
    basic = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert basic in gh.git_auth  # the smart-HTTP endpoint saw the token as Basic credentials

    every = recorded_git_calls(log)
    for c in every:  # no git process at all, ours or the test's own, had the token in its argv
        assert not any(TOKEN in a or basic.split()[1] in a for a in c["argv"]), c["argv"]
    calls = [c for c in every if c["env"].get("GIT_CONFIG_KEY_0") == "core.hooksPath"]  # the publish step's
    assert [c["argv"][0] for c in calls] == ["rev-parse", "ls-remote", "push"]
    for c in calls:
        assert c["env"].get("GITHUB_TOKEN", "") == ""  # blanked: GitPython would have copied it
    network = [c for c in calls if c["argv"][0] in ("push", "ls-remote")]
    assert network and all(any(basic in v for v in c["env"].values()) for c in network)  # ... and in the environment only


def test_push_without_a_valid_token_fails_in_one_line_without_prompting(setup):
    gh, checkout, _ = setup
    commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    with pytest.raises(IntegrateError) as err:
        push_branch(checkout, http_url(gh), "integrate/x", "ghp_wrongwrongwrongwrongwrong")
    assert "\n" not in err.value.message and "git push" in err.value.message and "terminal prompts disabled" in err.value.message
    assert "wrongwrong" not in err.value.message
    assert gh.branch_head("alice/diffusers", "integrate/x") is None


def test_push_rejected_by_the_server_is_one_line_and_leaves_nothing_half_done(setup):
    gh, checkout, _ = setup
    gh.set_hook("alice/diffusers", "pre-receive", "#!/bin/sh\necho 'push declined by policy' >&2\nexit 1\n")
    commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    url = gh.repos["alice/diffusers"].bare.as_uri()
    with pytest.raises(IntegrateError) as err:
        push_branch(checkout, url, "integrate/x", TOKEN)
    assert "\n" not in err.value.message and "git push" in err.value.message and TOKEN not in err.value.message
    assert "rejected [remote rejected] (pre-receive hook declined) (the server said: push declined by policy)" in err.value.message
    assert gh.branch_head("alice/diffusers", "integrate/x") is None
    gh.set_hook("alice/diffusers", "pre-receive", None)
    assert push_branch(checkout, url, "integrate/x", TOKEN).pushed  # the same call, once the server takes it


def test_already_there_is_not_pushed_again_and_fast_forward_needs_no_force(setup):
    gh, checkout, _ = setup
    url = gh.repos["alice/diffusers"].bare.as_uri()
    commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    push_branch(checkout, url, "integrate/x", TOKEN)
    again = push_branch(checkout, url, "integrate/x", TOKEN)
    assert not again.pushed
    sha = commit_on_branch(checkout, "integrate/x", {"new.py": "a = 2\n"})
    ff = push_branch(checkout, url, "integrate/x", TOKEN)
    assert ff.pushed and not ff.forced and gh.branch_head("alice/diffusers", "integrate/x") == sha


def test_diverged_branch_is_overwritten_only_when_it_is_what_the_tool_pushed(setup, tmp_path):
    gh, checkout, _ = setup
    url = gh.repos["alice/diffusers"].bare.as_uri()
    first = commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    push_branch(checkout, url, "integrate/x", TOKEN)
    # a re-run rebuilds the branch from main: new history
    git("checkout", "-q", "main", cwd=checkout)
    git("branch", "-D", "integrate/x", cwd=checkout)
    second = commit_on_branch(checkout, "integrate/x", {"new.py": "a = 10\n"})
    with pytest.raises(IntegrateError, match="did not push"):
        push_branch(checkout, url, "integrate/x", TOKEN)  # nothing says the fork's commit is ours
    assert gh.branch_head("alice/diffusers", "integrate/x") == first
    result = push_branch(checkout, url, "integrate/x", TOKEN, replaceable={first})
    assert result.forced and gh.branch_head("alice/diffusers", "integrate/x") == second

    # someone adds a commit on the fork: it is never overwritten, even with our old head listed
    other = tmp_path / "other"
    git("clone", "-q", "-b", "integrate/x", url, str(other), cwd=tmp_path)
    theirs = commit_on_branch(other, "integrate/x", {"theirs.py": "b = 1\n"}, "maintainer fix")
    git("push", "-q", "origin", "integrate/x", cwd=other)
    git("checkout", "-q", "main", cwd=checkout)
    git("branch", "-D", "integrate/x", cwd=checkout)
    commit_on_branch(checkout, "integrate/x", {"new.py": "a = 11\n"})
    with pytest.raises(IntegrateError, match="refusing to overwrite"):
        push_branch(checkout, url, "integrate/x", TOKEN, replaceable={first, second})
    assert gh.branch_head("alice/diffusers", "integrate/x") == theirs


def test_repository_hooks_do_not_run(setup):
    gh, checkout, _ = setup
    marker = checkout / "hook-ran"
    hook = checkout / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\nenv > '{marker}'\n")
    hook.chmod(0o755)
    commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    push_branch(checkout, http_url(gh), "integrate/x", TOKEN)
    assert not marker.exists()


def test_display_url_drops_credentials():
    assert display_url("https://user:secret@github.com/a/b.git") == "https://github.com/a/b.git"
    assert display_url("file:///tmp/x.git") == "file:///tmp/x.git"


def test_a_pushed_branch_is_fetched_back_with_the_same_credential_handling(setup, tmp_path):
    gh, checkout, log = setup
    sha = commit_on_branch(checkout, "integrate/x", {"new.py": "a = 1\n"})
    push_branch(checkout, http_url(gh), "integrate/x", TOKEN)
    clone = tmp_path / "maintainer"
    git("init", "-q", "-b", "main", str(clone), cwd=tmp_path)
    assert fetch_ref(clone, http_url(gh), "integrate/x", TOKEN, "refs/remotes/pr/head") == sha
    assert not any(TOKEN in a for c in recorded_git_calls(log) for a in c["argv"])
    with pytest.raises(IntegrateError, match="unusual ref"):
        fetch_ref(clone, http_url(gh), "--upload-pack=x", TOKEN, "refs/remotes/pr/head")
