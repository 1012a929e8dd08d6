"""A Hub id goes through huggingface_hub, here pointed at a stand-in Hub on 127.0.0.1."""

import json

import pytest
from conftest import EXAMPLE, assert_one_line_error, integrate
from hub_server import HubStandIn


@pytest.fixture
def hub():
    with HubStandIn() as server:
        server.add_repo("acme/tiny-dit", EXAMPLE)
        server.add_repo("acme/private-dit", EXAMPLE, token="hf_secret_test_token")
        yield server


def _env(hub, tmp_path, **extra):
    return {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "0", **extra}


def test_hub_repo_end_to_end(tmp_path, hub):
    proc = integrate("acme/tiny-dit", "--out", "out/x", "--llm", "none", "--json", cwd=tmp_path, env=_env(hub, tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["parity"]["passed"]
    run = json.loads((tmp_path / "runs" / summary["run_id"] / "run.json").read_text())
    resolved = run["stages"]["resolve"]["result"]
    assert resolved["kind"] == "hub" and resolved["revision"] == "0123456789abcdef0123456789abcdef01234567"
    # The inventory came from a ranged read of the header, before any full download.
    weight_gets = [r for r in hub.requests if r["method"] == "GET" and r["path"].endswith("model.safetensors")]
    assert weight_gets[0]["range"] is not None
    snapshot = tmp_path / "runs" / summary["run_id"] / "source"
    assert not (snapshot / "model.safetensors").exists()


def test_private_repo_needs_hf_token(tmp_path, hub):
    proc = integrate("acme/private-dit", "--out", "out/x", cwd=tmp_path, env=_env(hub, tmp_path))
    assert_one_line_error(proc, "acme/private-dit")
    assert not (tmp_path / "out").exists()

    ok = integrate("acme/private-dit", "--out", "out/y", "--llm", "none", cwd=tmp_path, env=_env(hub, tmp_path, HF_TOKEN="hf_secret_test_token"))
    assert ok.returncode == 0, ok.stderr
    assert all(r["auth"] == "Bearer hf_secret_test_token" for r in hub.requests if "private-dit" in r["path"] and r["auth"])
    # the token never lands in the run's records
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".log", ".py"):
            assert "hf_secret_test_token" not in path.read_text(errors="replace"), path


def test_offline_mode_without_cache(tmp_path, hub):
    proc = integrate("acme/tiny-dit", "--out", "out/x", cwd=tmp_path, env=_env(hub, tmp_path, HF_HUB_OFFLINE="1"))
    assert_one_line_error(proc, "acme/tiny-dit")
    assert not any(r["path"].startswith("/api/models/acme/tiny-dit") for r in hub.requests)


def test_unreachable_endpoint(tmp_path):
    proc = integrate("acme/tiny-dit", "--out", "out/x", cwd=tmp_path,
                     env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0", "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"})
    assert_one_line_error(proc, "acme/tiny-dit")
