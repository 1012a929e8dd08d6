"""`integrate verify` on a branch integrate published, untouched and tampered with: every claim
reproduces on the untouched one; each tamper is reported by the claim it breaks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLE, integrate


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, Path]:
    """One run of the bundled example: (its --out folder, the reference folder it came from)."""
    base = tmp_path_factory.mktemp("published")
    reference = base / "tiny-dit"
    shutil.copytree(EXAMPLE, reference, ignore=shutil.ignore_patterns("__pycache__"))
    proc = integrate(str(reference), "--out", "out", cwd=base, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return base / "out", reference


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def _verify(branch: Path, reference: Path, tmp_path: Path) -> tuple[int, dict[str, dict]]:
    out = tmp_path / "claims.json"
    proc = integrate("verify", str(branch), "--reference", str(reference), "--json", str(out), cwd=tmp_path, timeout=900)
    assert "Traceback" not in proc.stderr, proc.stderr
    rows = json.loads(out.read_text()) if out.exists() else []
    return proc.returncode, {r["claim"]: r for r in rows}


def test_every_claim_of_an_untouched_branch_reproduces(published, tmp_path):
    out, reference = published
    code, rows = _verify(out, reference, tmp_path)
    assert code == 0, rows
    assert all(r["agrees"] for r in rows.values())
    names = " | ".join(rows)
    for needle in ("port file unchanged", "parity spec", "reference weights", "converted weights reproduce",
                   "parity: reference vs port", "generated test", "convention findings"):
        assert needle in names


def test_each_tamper_is_reported(published, tmp_path):
    out, reference = published
    branch = _copy(out, tmp_path / "branch")
    ref = _copy(reference, tmp_path / "reference")
    # 1. a converted weight file changed after the run
    weights = branch / "weights" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    # 2. the port edited (a wrong epsilon in the final norm)
    model = branch / "transformer_tiny_dit.py"
    model.write_text(model.read_text().replace("elementwise_affine=False, eps=1e-6", "elementwise_affine=False, eps=1e-2", 1))
    # 3. the manifest edited: a looser tolerance, and a claimed finding count
    manifest = json.loads((branch / "integrate-evidence.json").read_text())
    manifest["parity"]["spec"]["made_from"]["tolerance"]["max_abs"] = 1.0
    manifest["checks"]["findings"] = 3
    (branch / "integrate-evidence.json").write_text(json.dumps(manifest, indent=2))

    code, rows = _verify(branch, ref, tmp_path)
    assert code == 1
    disagree = {k for k, r in rows.items() if not r["agrees"]}
    assert "converted weights in the folder: diffusion_pytorch_model.safetensors" in disagree
    assert "port file unchanged: transformer_tiny_dit.py" in disagree
    assert "parity spec parity_spec.py is integrate's own, made from the manifest" in disagree
    assert "convention findings on transformer_tiny_dit.py" in disagree
    assert "parity tolerance no looser than the float32 preset" in disagree
    parity = next(r for k, r in rows.items() if k.startswith("parity: reference vs port"))
    assert not parity["agrees"]  # the edited port, judged on the tolerance the edited manifest asks for
    # what was not touched still agrees
    assert rows["reference weights: model.safetensors"]["agrees"]


def test_a_changed_reference_is_reported(published, tmp_path):
    out, reference = published
    ref = _copy(reference, tmp_path / "reference")
    (ref / "tiny_dit.py").write_text((ref / "tiny_dit.py").read_text() + "\n# edited after the run\n")
    code, rows = _verify(out, ref, tmp_path)
    assert code == 1
    assert not rows["reference file: tiny_dit.py"]["agrees"]


def test_a_manifest_that_smuggles_code_into_the_spec_is_refused(published, tmp_path):
    out, reference = published
    branch = _copy(out, tmp_path / "branch")
    manifest = json.loads((branch / "integrate-evidence.json").read_text())
    manifest["parity"]["spec"]["made_from"]["class_name"] = 'X"""\nimport os; os.system("touch /tmp/pwned")\n"""'
    (branch / "integrate-evidence.json").write_text(json.dumps(manifest))
    code, rows = _verify(branch, reference, tmp_path)
    assert code == 1
    [row] = rows.values()
    assert re.search("not a Python identifier", row["measured"]) and not row["agrees"]


def test_verify_needs_a_manifest(tmp_path):
    proc = integrate("verify", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "no integrate-evidence.json" in proc.stderr


def test_a_pull_request_is_fetched_verified_and_reviewed_once(published, tmp_path):
    """`integrate verify OWNER/REPO#N --post` against the stand-in GitHub (real PyGithub, real git
    fetch): the branch is fetched from the head repository, every claim reproduces, and the
    result lands as the tool's one review, updated (not duplicated) on a re-run."""
    from github import Auth
    from github_server import GitHubStandIn
    from publish_helpers import git

    from agent.publish.github import GitHubClient
    from agent.publish.retry import RetryPolicy

    out, reference = published
    base = tmp_path / "base"
    git("clone", "-q", str(out), str(base), cwd=tmp_path)
    git("reset", "-q", "--hard", git("rev-list", "--max-parents=0", "HEAD", cwd=base), cwd=base)
    with GitHubStandIn(tmp_path / "github") as gh:
        gh.add_user("alice", "tok-alice")
        gh.add_user("maintainer", "tok-maint")
        gh.add_repo("acme/models", source=base, collaborators=("maintainer",))
        c = GitHubClient(Auth.Token("tok-alice"), gh.url, RetryPolicy(retries=2, backoff_s=0.05, max_wait_s=5, secondary_wait_s=0.1), pace_s=(0, 0))
        upstream = c.repo("acme/models")
        fork = c.ensure_fork(upstream, poll_s=0.01)
        git("push", "-q", fork.clone_url, "HEAD:refs/heads/integrate/tiny-dit", cwd=out)
        pr = c.open_or_update_pull(upstream, fork.owner, "integrate/tiny-dit", "Add TinyDiT", "body").pull

        env = {"GITHUB_API_URL": gh.url, "GITHUB_TOKEN": "tok-maint"}
        for attempt in (1, 2):
            proc = integrate("verify", f"acme/models#{pr.number}", "--reference", str(reference), "--post", cwd=tmp_path, env=env, timeout=900)
            assert proc.returncode == 0, proc.stderr + proc.stdout
            assert "claims reproduce" in proc.stdout and "review posted" in proc.stdout
            reviews = [r for r in gh.reviews if r["user"] == "maintainer"]
            assert len(reviews) == 1, f"attempt {attempt}: {len(reviews)} reviews"
            assert "claims reproduce" in reviews[0]["body"]
        assert "tok-maint" not in proc.stdout + proc.stderr
