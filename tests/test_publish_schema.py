"""The stand-in GitHub answers as GitHub's published REST API description says it does.

Drives every endpoint the stand-in serves through the real client, then checks each recorded
response body against the response schema of its operation (and each request body the client
sent against the request schema). The description's trimmed copy lives in shared/ beside the
checkout (tests/github_description.py); without it this test is skipped and says so.
"""

from __future__ import annotations

import re

import pytest
from github import Auth
from github_description import OPERATIONS, load, trimmed_path, validator_for
from github_server import GitHubStandIn
from publish_helpers import commit_on_branch, git, rsa_key_pair, small_repo

from agent.publish.github import GitHubClient, LineComment
from agent.publish.github_auth import auth_from_env
from agent.publish.retry import RetryPolicy

DESCRIPTION = load()
pytestmark = pytest.mark.skipif(DESCRIPTION is None, reason=f"GitHub REST API description not present at {trimmed_path()}")


def _template_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", r"[^/]+", re.escape(template)) + "$")


ROUTES = [(method.upper(), _template_regex(path), path, status) for method, path, status in OPERATIONS]


def operation_of(method: str, path: str) -> tuple[str, str] | None:
    for m, regex, template, status in ROUTES:
        if m == method and regex.match(path):
            return template, status
    return None


def test_every_answer_matches_the_published_description(tmp_path):
    with GitHubStandIn(tmp_path / "github") as gh:
        gh.add_user("alice", "tok-alice")
        gh.add_user("maintainer", "tok-maint")
        gh.add_repo("huggingface/diffusers", source=small_repo(tmp_path), collaborators=("maintainer",))
        policy = RetryPolicy(retries=0)
        alice = GitHubClient(Auth.Token("tok-alice"), gh.url, policy, pace_s=(0, 0))
        maint = GitHubClient(Auth.Token("tok-maint"), gh.url, policy, pace_s=(0, 0))
        upstream = alice.repo("huggingface/diffusers")
        fork = alice.ensure_fork(upstream, poll_s=0)
        commit_on_branch(tmp_path / "checkout", "b", {"model.py": "".join(f"x{i} = {i}\n" for i in range(1, 21)) + "y = 1\n"})
        git("push", "-q", fork.clone_url, "b", cwd=tmp_path / "checkout")
        pr = alice.open_or_update_pull(upstream, "alice", "b", "t", "body").pull
        gh.repos["huggingface/diffusers"].collaborators.add("alice")
        alice.open_or_update_pull(upstream, "alice", "b", "t2", "body2", ("lbl",))
        maint.post_review("huggingface/diffusers", pr.number, "s", [LineComment("model.py", 21, "c", "R1")])
        maint.post_review("huggingface/diffusers", pr.number, "s2", [LineComment("model.py", 20, "d", "R2")])
        maint.post_review("huggingface/diffusers", pr.number, "s3", [LineComment("model.py", 20, "d, reworded", "R2")])
        alice.upsert_comment("huggingface/diffusers", pr.number, "integrate:status", "one")
        alice.upsert_comment("huggingface/diffusers", pr.number, "integrate:status", "two")
        private, public = rsa_key_pair()
        gh.add_app(9, public)
        gh.add_installation(10, 9, "huggingface", ("huggingface/diffusers",))
        bot = GitHubClient(auth_from_env("huggingface/diffusers", {"GITHUB_APP_ID": "9", "GITHUB_APP_PRIVATE_KEY": private,
                                                                    "GITHUB_API_URL": gh.url}), gh.url, policy, pace_s=(0, 0))
        bot.comments("huggingface/diffusers", pr.number)
        bot.create_comment("huggingface/diffusers", pr.number, "from the app")

        checked: dict[str, int] = {}
        problems: list[str] = []
        for record in gh.requests:
            found = operation_of(record["method"], record["path"])
            assert found, f"the stand-in answered an operation outside the description list: {record['method']} {record['path']}"
            template, status = found
            key = f"{record['method']} {template}"
            if record["status"] != int(status):
                continue  # error answers (404 while a fork appears) are checked below
            if DESCRIPTION["operations"][key]["response"] is not None:
                for error in validator_for(DESCRIPTION, record["method"], template).iter_errors(record["response"]):
                    problems.append(f"{key}: {'/'.join(map(str, error.absolute_path))}: {error.message[:200]}")
            body = record["body"]
            if key.endswith("/labels") and isinstance(body, list):
                # PyGithub sends the bare array, which the description's text allows ("You can also pass
                # an `array` of labels directly") though its schema lists only {"labels": [...]}
                body = {"labels": body}
            if body is not None and DESCRIPTION["operations"][key]["request"] is not None:
                for error in validator_for(DESCRIPTION, record["method"], template, "request").iter_errors(body):
                    problems.append(f"request {key}: {error.message[:200]}")
            checked[key] = checked.get(key, 0) + 1
        for record in gh.requests:
            if record["status"] and record["status"] >= 400 and record["response"] is not None:
                errors = list(validator_for({"operations": {"x y": {"response": {"$ref": "#/$defs/basic-error"}}},
                                             "$defs": DESCRIPTION["$defs"]}, "x", "y").iter_errors(record["response"]))
                problems += [f"error body of {record['method']} {record['path']}: {e.message}" for e in errors]
        assert problems == []
        served = {f"{m.upper()} {p}" for m, p, _ in OPERATIONS}
        # the one operation the client does not use (it lists a pull request's comments at once)
        assert set(checked) == served - {"GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}/comments"}
