"""The Hub client (real huggingface_hub) against the stand-in Hub: the weights as a pull request,
into diffusers/ of the source repo or a new repo, updated on re-run, auth and rate limits."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from hub_server import HubStandIn

from agent.errors import IntegrateError
from agent.publish.hub import HubClient, weight_files
from agent.publish.retry import RetryPolicy

FAST = RetryPolicy(retries=2, backoff_s=0.05, max_wait_s=5)
TOKEN = "hf_" + "Q" * 30


@pytest.fixture(autouse=True)
def lfs_transfer(monkeypatch):
    """hf_xet's own protocol is not stood in: file contents go through the LFS batch API."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture
def weights(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "TinyDiTTransformer2DModel", "depth": 2}))
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(256)) * 64)
    (folder / "notes.txt").write_text("not a weight: never uploaded")
    return folder


@pytest.fixture
def hub(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "model.safetensors").write_bytes(b"original")
    (source / "config.json").write_text("{}")
    with HubStandIn() as server:
        server.add_repo("org/model", source)
        server.add_user("alice", TOKEN)
        yield server


def client(hub, token=TOKEN) -> HubClient:
    return HubClient(token=token, endpoint=hub.url, policy=FAST)


def test_weights_go_as_a_pull_request_into_diffusers_of_the_source_repo(hub, weights):
    result = client(hub).publish_weights("org/model", weights, "diffusers", "Add diffusers weights for X", "converted")
    assert result.pr_num == 1 and result.pr_url == f"{hub.url}/org/model/discussions/1" and not result.updated_pr
    commit = hub.commits[-1]
    assert commit["create_pr"] is True and commit["revision"] == "main" and commit["summary"] == "Add diffusers weights for X"
    ops = {op["value"]["path"]: op["key"] for op in commit["operations"]}
    assert ops == {"diffusers/config.json": "file", "diffusers/diffusion_pytorch_model.safetensors": "lfsFile"}
    files = hub.files_at("org/model", "refs/pr/1")
    assert files["diffusers/diffusion_pytorch_model.safetensors"] == (weights / "diffusion_pytorch_model.safetensors").read_bytes()
    assert hub.files_at("org/model")["model.safetensors"] == b"original"  # main untouched
    assert {f.name: f.sha256 for f in result.files}["diffusers/config.json"] == hashlib.sha256((weights / "config.json").read_bytes()).hexdigest()
    assert "notes.txt" not in str(hub.files_at("org/model", "refs/pr/1"))
    assert result.load_snippet() == 'from_pretrained("org/model", subfolder="diffusers", revision="refs/pr/1")'
    paths = [(r["method"], r["path"]) for r in hub.requests]
    assert ("POST", "/api/models/org/model/preupload/main") in paths and ("POST", "/api/models/org/model/commit/main") in paths
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in hub.requests if r["method"] == "POST" and r["path"].startswith("/api/"))


def test_rerun_commits_onto_the_same_pull_request(hub, weights):
    c = client(hub)
    c.publish_weights("org/model", weights, "diffusers", "Add diffusers weights for X", "converted")
    (weights / "config.json").write_text(json.dumps({"_class_name": "TinyDiTTransformer2DModel", "depth": 3}))
    again = c.publish_weights("org/model", weights, "diffusers", "Add diffusers weights for X", "converted")
    assert again.updated_pr and again.pr_num == 1 and len(hub.pull_requests["org/model"]) == 1
    last = hub.commits[-1]
    assert last["revision"] == "refs/pr/1" and last["create_pr"] is False
    assert [op["value"]["path"] for op in last["operations"]] == ["diffusers/config.json"]  # the unchanged shard is skipped
    assert json.loads(hub.files_at("org/model", "refs/pr/1")["diffusers/config.json"])["depth"] == 3
    commits = len(hub.commits)
    unchanged = c.publish_weights("org/model", weights, "diffusers", "Add diffusers weights for X", "converted")
    assert unchanged.updated_pr and unchanged.pr_num == 1 and len(hub.commits) == commits  # nothing to commit


def test_rerun_with_fewer_shards_removes_the_old_shards_from_the_pull_request(hub, weights):
    single = (weights / "diffusion_pytorch_model.safetensors").read_bytes()
    (weights / "diffusion_pytorch_model.safetensors").unlink()
    for i in (1, 2):
        (weights / f"diffusion_pytorch_model-0000{i}-of-00002.safetensors").write_bytes(single + bytes([i]))
    (weights / "diffusion_pytorch_model.safetensors.index.json").write_text('{"weight_map": {}}')
    c = client(hub)
    c.publish_weights("org/model", weights, "diffusers", "Add diffusers weights for X", "converted")
    assert len([f for f in hub.files_at("org/model", "refs/pr/1") if f.startswith("diffusers/") and f.endswith(".safetensors")]) == 2
    for p in list(weights.glob("diffusion_pytorch_model*")):
        p.unlink()
    (weights / "diffusion_pytorch_model.safetensors").write_bytes(single)
    c.publish_weights("org/model", weights, "diffusers", "Add diffusers weights for X", "converted")
    files = set(hub.files_at("org/model", "refs/pr/1"))
    assert {f for f in files if f.startswith("diffusers/")} == {"diffusers/config.json", "diffusers/diffusion_pytorch_model.safetensors"}
    assert {"model.safetensors", "config.json"} <= files  # the repo's own files are not the tool's to delete
    deleted = [op["value"]["path"] for op in hub.commits[-1]["operations"] if op["key"] == "deletedFile"]
    assert sorted(deleted) == ["diffusers/diffusion_pytorch_model-00001-of-00002.safetensors",
                               "diffusers/diffusion_pytorch_model-00002-of-00002.safetensors",
                               "diffusers/diffusion_pytorch_model.safetensors.index.json"]


def test_hub_repo_is_created_when_missing_and_gets_the_files_at_its_root(hub, weights):
    result = client(hub).publish_weights("alice/tiny-dit-diffusers", weights, "", "Add diffusers weights for X", "c",
                                         create_repo=True)
    assert result.created_repo and result.pr_num == 1
    create = [r for r in hub.requests if r["path"] == "/api/repos/create"]
    assert len(create) == 1 and json.loads(create[0]["raw"])["name"] == "tiny-dit-diffusers"
    assert set(hub.files_at("alice/tiny-dit-diffusers", "refs/pr/1")) == {"config.json", "diffusion_pytorch_model.safetensors"}


def test_missing_repo_without_create_is_one_line(hub, weights):
    with pytest.raises(IntegrateError, match="org/absent not found"):
        client(hub).publish_weights("org/absent", weights, "diffusers", "t", "d")


def test_bad_token_is_one_line_401(hub, weights):
    with pytest.raises(IntegrateError) as err:
        client(hub, "hf_" + "W" * 30).publish_weights("org/model", weights, "diffusers", "t", "d")
    assert "\n" not in err.value.message and "token was refused" in err.value.message and "W" * 30 not in err.value.message


def test_forbidden_is_one_line_403(hub, weights):
    hub.fail("POST", r"/api/models/org/model/commit/main", 403, body={"error": "not allowed"})
    with pytest.raises(IntegrateError) as err:
        client(hub).publish_weights("org/model", weights, "diffusers", "t", "d")
    assert "\n" not in err.value.message and "permission denied" in err.value.message


def test_rate_limit_429_with_retry_after_is_waited_and_retried(hub, weights):
    hub.fail("POST", r"/api/models/org/model/commit/main", 429, {"Retry-After": "1"}, times=1)
    start = time.monotonic()
    result = client(hub).publish_weights("org/model", weights, "diffusers", "t", "d")
    assert result.pr_num == 1 and time.monotonic() - start >= 0.95
    assert len(hub.pull_requests["org/model"]) == 1
    assert [r.get("query") for r in hub.requests if r["path"] == "/api/models/org/model/commit/main"] == [{"create_pr": ["1"]}] * 2


def test_rate_limit_that_persists_gives_up_in_one_line(hub, weights):
    hub.fail("POST", r"/api/models/org/model/commit/main", 429, {"Retry-After": "0"}, times=50)
    with pytest.raises(IntegrateError) as err:
        client(hub).publish_weights("org/model", weights, "diffusers", "t", "d")
    assert "\n" not in err.value.message and "rate limited" in err.value.message
    assert len([r for r in hub.requests if r["path"] == "/api/models/org/model/commit/main"]) == FAST.retries + 1


def test_only_regular_weight_and_config_files_are_chosen(tmp_path, weights):
    (weights / "link.safetensors").symlink_to(weights / "diffusion_pytorch_model.safetensors")
    assert [p.name for p in weight_files(weights)] == ["config.json", "diffusion_pytorch_model.safetensors"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IntegrateError, match="lacks config.json or safetensors"):
        weight_files(empty)


def test_dry_run_plans_the_calls_and_sends_nothing(hub, weights):
    seen: list[str] = []
    planner = HubClient(token=None, endpoint=hub.url, plan=lambda method, path, what: seen.append(f"{method} {path}"))
    planner.publish_weights("org/model", weights, "diffusers", "t", "d")
    assert hub.requests == []
    assert seen[:3] == ["GET /api/whoami-v2", "GET /api/models/org/model",
                        "GET /api/models/org/model/discussions?type=pull_request&status=open&author={you}"]
    assert seen[-1].startswith("POST /api/models/org/model/commit/main?create_pr=1")
