"""The GitHub client (real PyGithub) against the stand-in REST server: the exact calls, idempotence,
auth failures, rate limits, App installation tokens."""

from __future__ import annotations

import time

import pytest
from github import Auth
from github_server import BAD_CREDENTIALS, PRIMARY_LIMIT, SECONDARY_LIMIT, GitHubStandIn
from publish_helpers import commit_on_branch, git, rsa_key_pair, small_repo

from agent.errors import IntegrateError
from agent.publish.github import REVIEW_MARKER, GitHubClient, LineComment, marker_fields, parse_pull_ref
from agent.publish.github_auth import auth_from_env
from agent.publish.retry import RetryPolicy

UPSTREAM = "huggingface/diffusers"
FAST = RetryPolicy(retries=3, backoff_s=0.05, max_wait_s=5, secondary_wait_s=0.2)


@pytest.fixture
def server(tmp_path):
    with GitHubStandIn(tmp_path / "github") as gh:
        gh.add_user("alice", "tok-alice")
        gh.add_user("maintainer", "tok-maint")
        gh.add_repo(UPSTREAM, source=small_repo(tmp_path), collaborators=("maintainer",))
        yield gh


def client(gh, token="tok-alice", policy=FAST) -> GitHubClient:
    return GitHubClient(Auth.Token(token), gh.url, policy, pace_s=(0, 0))


def pushed_fork(gh, tmp_path, c: GitHubClient, edits=None) -> tuple:
    """alice's fork (created through the API) with branch integrate/x pushed from the checkout."""
    upstream = c.repo(UPSTREAM)
    fork = c.ensure_fork(upstream, poll_s=0.01)
    checkout = tmp_path / "checkout"
    sha = commit_on_branch(checkout, "integrate/x", edits or {"model.py": "".join(f"x{i} = {i}\n" for i in range(1, 21)) + "y = 1\n"})
    git("push", "-q", fork.clone_url, "integrate/x", cwd=checkout)
    return upstream, fork, sha


def test_missing_fork_is_created_through_the_api_and_waited_for(server, tmp_path):
    c = client(server)
    server.fork_delay = 3  # the new fork answers 404 three times, as GitHub's appear after a while
    upstream = c.repo(UPSTREAM)
    fork = c.ensure_fork(upstream, poll_s=0.01)
    assert fork.full_name == "alice/diffusers" and fork.fork and fork.parent == UPSTREAM
    posts = server.calls("POST", r"/repos/huggingface/diffusers/forks")
    assert len(posts) == 1 and posts[0]["body"] == {"name": "diffusers", "default_branch_only": True}
    assert [r["status"] for r in server.calls("GET", r"/repos/alice/diffusers")] == [404, 404, 404, 404, 200]
    # asked again, the existing fork is used: no second POST
    assert c.ensure_fork(upstream, poll_s=0.01) == fork
    assert len(server.calls("POST", r".*/forks")) == 1


def test_a_repository_that_is_not_a_fork_of_the_upstream_is_refused(server, tmp_path):
    server.add_repo("alice/diffusers")  # a repo of the same name, not a fork
    c = client(server)
    with pytest.raises(IntegrateError, match="is not a fork of huggingface/diffusers"):
        c.ensure_fork(c.repo(UPSTREAM))


def test_draft_pull_request_with_head_base_body_and_labels_then_updated_not_duplicated(server, tmp_path):
    server.repos[UPSTREAM].collaborators.add("alice")  # may label
    c = client(server)
    upstream, fork, sha = pushed_fork(server, tmp_path, c)
    first = c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X", "the body", ("new-model",), head_sha=sha)
    create = server.calls("POST", r"/repos/huggingface/diffusers/pulls")
    assert len(create) == 1
    body = create[0]["body"]
    assert body["draft"] is True and body["head"] == "alice:integrate/x" and body["base"] == "main"
    assert body["title"] == "Add X" and body["body"].startswith("the body") and body["maintainer_can_modify"] is True
    assert marker_fields(body["body"], "integrate:pr") == {"head": sha}
    assert server.calls("POST", r"/repos/huggingface/diffusers/issues/1/labels")[0]["body"] == ["new-model"]
    assert first.created and first.pull.draft and first.pull.labels == ("new-model",) and first.labels_added == ("new-model",)

    again = c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X v2", "new body", ("new-model",), head_sha=sha)
    assert not again.created and again.pull.number == first.pull.number
    assert len(server.pull_records(UPSTREAM)) == 1
    assert len(server.calls("POST", r"/repos/huggingface/diffusers/pulls")) == 1
    patch = server.calls("PATCH", r"/repos/huggingface/diffusers/pulls/1")
    assert len(patch) == 1 and patch[0]["body"]["title"] == "Add X v2" and patch[0]["body"]["body"].startswith("new body")
    assert len(server.calls("POST", r".*/labels")) == 1  # already labelled: not asked again
    assert server.pull_records(UPSTREAM)[0]["body"].count("<!-- integrate:pr") == 1


def test_labels_without_triage_access_are_a_note_not_a_failure(server, tmp_path):
    c = client(server)
    upstream, fork, sha = pushed_fork(server, tmp_path, c)
    result = c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X", "b", ("new-model",))
    assert result.created and result.labels_added == ()
    assert result.notes and "labels not applied (new-model)" in result.notes[0]


def test_create_retried_after_it_got_through_uses_the_existing_pull_request(server, tmp_path):
    c = client(server)
    upstream, fork, sha = pushed_fork(server, tmp_path, c)
    c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X", "b")
    # a caller that saw no PR (a stale find) gets GitHub's 422 "already exists" and adopts that PR
    result = c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X", "b2", existing=None)
    assert not result.created and len(server.pull_records(UPSTREAM)) == 1
    assert server.calls("POST", r".*/pulls")[-1]["status"] == 422


def test_review_with_line_comments_then_updated_in_place_not_duplicated(server, tmp_path):
    c = client(server)
    edits = {"model.py": "".join(f"x{i} = {i}\n" for i in range(1, 21)) + "y = 1\nz = 2\n"}
    upstream, fork, _ = pushed_fork(server, tmp_path, c, edits)
    pr = c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X", "b").pull
    assert c.changed_lines(UPSTREAM, pr.number) == {"model.py": set(range(18, 23))}
    reviewer = client(server, "tok-maint")
    first = reviewer.post_review(UPSTREAM, pr.number, "2 claims checked", [
        LineComment("model.py", 21, "use a diffusers name", "M001"),
        LineComment("model.py", 22, "missing docstring", "M002"),
        LineComment("model.py", 3, "outside the diff", "M003"),
    ])
    post = server.calls("POST", r"/repos/huggingface/diffusers/pulls/1/reviews")
    assert len(post) == 1 and post[0]["body"]["event"] == "COMMENT"
    assert [(x["path"], x["line"], x["side"]) for x in post[0]["body"]["comments"]] == [("model.py", 21, "RIGHT"), ("model.py", 22, "RIGHT")]
    assert "outside the diff" in post[0]["body"]["body"] and "model.py:3" in post[0]["body"]["body"]
    assert first.created and first.comments_created == 2 and [o.rule for o in first.outside_diff] == ["M003"]

    # second post: one finding fixed, one reworded, one new on a changed line
    second = reviewer.post_review(UPSTREAM, pr.number, "3 claims checked", [
        LineComment("model.py", 21, "use a diffusers name (e.g. to_q)", "M001"),
        LineComment("model.py", 18, "new finding", "M004"),
    ])
    assert not second.created and second.review_id == first.review_id
    assert (second.comments_edited, second.comments_deleted, second.comments_created) == (1, 1, 1)
    assert len(server.calls("POST", r".*/pulls/1/reviews")) == 1
    put = server.calls("PUT", rf"/repos/huggingface/diffusers/pulls/1/reviews/{first.review_id}")
    assert len(put) == 1 and put[0]["body"]["body"].startswith("3 claims checked")
    own = [r for r in server.reviews if r["body"] and marker_fields(r["body"], REVIEW_MARKER) is not None]
    assert len(own) == 1
    remaining = sorted((x["line"], x["body"].splitlines()[0]) for x in server.review_comments)
    assert remaining == [(18, "new finding"), (21, "use a diffusers name (e.g. to_q)")]

    # third post, nothing changed: nothing edited, created or deleted
    third = reviewer.post_review(UPSTREAM, pr.number, "3 claims checked", [
        LineComment("model.py", 21, "use a diffusers name (e.g. to_q)", "M001"),
        LineComment("model.py", 18, "new finding", "M004"),
    ])
    assert (third.comments_edited, third.comments_deleted, third.comments_created, third.comments_unchanged) == (0, 0, 0, 2)


def test_status_comment_is_edited_in_place(server, tmp_path):
    issue = server.add_issue(UPSTREAM, "please add org/model")
    c = client(server)
    first = c.upsert_comment(UPSTREAM, issue, "integrate:status job=1", "queued: waiting for a GPU worker")
    second = c.upsert_comment(UPSTREAM, issue, "integrate:status job=1", "running: convert")
    same = c.upsert_comment(UPSTREAM, issue, "integrate:status job=1", "running: convert")
    assert first.created and second.id == first.id == same.id
    assert len(server.issue_comments) == 1 and server.issue_comments[0]["body"].startswith("running: convert")
    assert len(server.calls("PATCH", r".*/issues/comments/\d+")) == 1
    assert c.edit_comment(UPSTREAM, issue, first.id, "done").body == "done"


def test_bad_token_is_one_line_401(server):
    with pytest.raises(IntegrateError) as err:
        client(server, "tok-wrong").repo(UPSTREAM)
    message = err.value.message
    assert "\n" not in message and "401 Bad credentials" in message and "could not read the repository" in message
    assert "tok-wrong" not in message


def test_forbidden_is_one_line_403(server, tmp_path):
    c = client(server)
    upstream, fork, _ = pushed_fork(server, tmp_path, c)
    server.fail("POST", r"/repos/huggingface/diffusers/pulls", 403, {"message": "Resource not accessible by personal access token", "status": "403"})
    with pytest.raises(IntegrateError) as err:
        c.open_or_update_pull(upstream, fork.owner, "integrate/x", "Add X", "b")
    assert "\n" not in err.value.message and "permission denied" in err.value.message and "open the pull request" in err.value.message
    assert len(server.calls("POST", r".*/pulls")) == 1  # a plain 403 is not retried


@pytest.mark.parametrize("status, payload, headers", [
    (403, {"message": "slow down", "status": "403"}, {"Retry-After": "1"}),
    (429, {"message": "Too many requests", "status": "429"}, {"Retry-After": "1"}),
    (403, SECONDARY_LIMIT, {}),
    (403, PRIMARY_LIMIT, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "RESET"}),
], ids=["403-retry-after", "429-retry-after", "secondary-body", "primary-reset"])
def test_rate_limits_are_retried_with_the_wait_they_ask_for(server, status, payload, headers):
    headers = {k: (str(int(time.time()) + 1) if v == "RESET" else v) for k, v in headers.items()}
    server.fail("GET", r"/repos/huggingface/diffusers", status, payload, headers, times=2)
    start = time.monotonic()
    assert client(server).repo(UPSTREAM).full_name == UPSTREAM
    waited = time.monotonic() - start
    statuses = [r["status"] for r in server.calls("GET", r"/repos/huggingface/diffusers")]
    assert statuses == [status, status, 200]
    if headers.get("Retry-After"):
        assert waited >= 2 * 0.95  # Retry-After: 1, twice
    elif payload is SECONDARY_LIMIT:
        assert waited >= 2 * FAST.secondary_wait_s * 0.95
    else:
        assert waited >= 0.5  # until x-ratelimit-reset


@pytest.mark.parametrize("status, payload, headers", [
    (403, SECONDARY_LIMIT, {}),
    (429, {"message": "Too many requests", "status": "429"}, {"Retry-After": "0"}),
], ids=["secondary", "429"])
def test_rate_limits_give_up_after_the_retries_with_one_line(server, status, payload, headers):
    server.fail("GET", r"/repos/huggingface/diffusers", status, payload, headers, times=50)
    with pytest.raises(IntegrateError) as err:
        client(server).repo(UPSTREAM)
    assert "\n" not in err.value.message and "rate limited" in err.value.message and "try again later" in err.value.message
    assert len(server.calls("GET", r"/repos/huggingface/diffusers")) == FAST.retries + 1


def test_a_wait_longer_than_allowed_is_not_slept(server):
    reset = str(int(time.time()) + 3600)
    server.fail("GET", r"/repos/huggingface/diffusers", 403, PRIMARY_LIMIT, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, times=5)
    start = time.monotonic()
    with pytest.raises(IntegrateError, match="rate limited"):
        client(server).repo(UPSTREAM)
    assert time.monotonic() - start < 5


# GitHub App -------------------------------------------------------------------------------------

@pytest.fixture
def app(server):
    private, public = rsa_key_pair()
    server.add_app(4242, public)
    server.add_installation(77, 4242, "huggingface", (UPSTREAM,))
    return {"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": private, "GITHUB_API_URL": server.url}


def test_app_installation_token_from_a_jwt_found_by_repository(server, app):
    auth = auth_from_env(UPSTREAM, app)
    c = GitHubClient(auth, server.url, FAST, pace_s=(0, 0))
    issue = server.add_issue(UPSTREAM, "please add org/model")
    comment = c.create_comment(UPSTREAM, issue, "queued")
    assert server.issue_comments[0]["user"] == "integrate-bot[bot]" and comment.created
    lookup = server.calls("GET", r"/repos/huggingface/diffusers/installation")
    assert len(lookup) == 1 and lookup[0]["auth"].startswith("Bearer ey")  # a JWT, not a token
    tokens = server.calls("POST", r"/app/installations/77/access_tokens")
    assert len(tokens) == 1
    assert c.token() == tokens[0]["response"]["token"]


def test_app_installation_token_is_renewed_before_it_expires(server, app):
    server.token_ttl_s = 22  # PyGithub renews 20 s before expiry: usable for about 2 s
    c = GitHubClient(auth_from_env(None, {**app, "GITHUB_APP_INSTALLATION_ID": "77"}), server.url, FAST, pace_s=(0, 0))
    issue = server.add_issue(UPSTREAM, "please add org/model")
    first = c.create_comment(UPSTREAM, issue, "queued")
    token_one = c.token()
    time.sleep(2.5)
    c.edit_comment(UPSTREAM, issue, first.id, "running")
    token_two = c.token()
    assert token_one != token_two
    assert len(server.calls("POST", r"/app/installations/77/access_tokens")) == 2
    used = [r["auth"] for r in server.calls(path=r"/repos/.*")]
    assert used[-1] == f"token {token_two}"


def test_app_has_no_user_to_fork_to_and_says_to_pass_fork(server, app):
    c = GitHubClient(auth_from_env(UPSTREAM, app), server.url, FAST, pace_s=(0, 0))
    with pytest.raises(IntegrateError, match="pass --fork OWNER/NAME"):
        c.ensure_fork(c.repo(UPSTREAM))
    assert c.ensure_fork(c.repo(UPSTREAM), UPSTREAM).full_name == UPSTREAM  # a branch on the upstream itself


def test_app_without_access_to_a_repository_is_a_one_line_error(server, app):
    server.add_repo("other/repo")
    with pytest.raises(IntegrateError) as err:
        auth_from_env("other/repo", app)
    assert "\n" not in err.value.message and "installation on other/repo" in err.value.message


def test_credentials_missing_or_malformed_are_one_line(server):
    with pytest.raises(IntegrateError, match="no GitHub credentials"):
        auth_from_env(UPSTREAM, {})
    with pytest.raises(IntegrateError, match="holds no PEM private key"):
        auth_from_env(UPSTREAM, {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "nope"})
    with pytest.raises(IntegrateError, match="must be a number"):
        auth_from_env(UPSTREAM, {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
                                 "GITHUB_APP_INSTALLATION_ID": "x"})
    assert BAD_CREDENTIALS["message"] == "Bad credentials"


def test_pull_references_are_parsed():
    assert parse_pull_ref("https://github.com/huggingface/diffusers/pull/123") == ("huggingface/diffusers", 123)
    assert parse_pull_ref("https://github.com/huggingface/diffusers/pull/123/files#diff") == ("huggingface/diffusers", 123)
    assert parse_pull_ref("huggingface/diffusers#7") == ("huggingface/diffusers", 7)
    assert parse_pull_ref("./some/folder") is None and parse_pull_ref("org/model") is None
