"""The real-model corpus (benchmarks/corpus): folders built from pinned PyPI wheels hold the
package's files unmodified, seeded weights made by the reference itself, and a corpus entry that
ports today keeps porting with exact parity. The slow tests download two small wheels with pip
(CI reaches PyPI); they skip, and say so, when pip cannot."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus.build import BuildError, build, fetch_wheel, upstream_changed  # noqa: E402
from corpus.entries import BY_NAME, ENTRIES  # noqa: E402


def test_entries_are_pinned_and_distinct():
    assert len(ENTRIES) >= 8 and len(BY_NAME) == len(ENTRIES)
    for e in ENTRIES:
        assert re.fullmatch(r"[0-9a-f]{64}", e.wheel_sha256), e.name
        assert e.files and e.license_files and e.license, e.name
        assert set(e.placeholders) <= set(e.files), e.name
        assert e.module.replace(".", "/") + ".py" in e.files, e.name
        assert "def inputs(seed)" in e.inputs, e.name


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def wheel_or_skip(name: str, work: Path) -> Path:
    try:
        return fetch_wheel(BY_NAME[name], work)
    except BuildError as exc:
        pytest.skip(f"pip could not fetch the pinned wheel: {exc}")


def wheel_record(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as z:
        record = next(n for n in z.namelist() if n.endswith("RECORD"))
        rows = csv.reader(io.StringIO(z.read(record).decode()))
        return {r[0]: base64.urlsafe_b64decode(r[1][7:] + "==").hex() for r in rows if r[1:] and r[1].startswith("sha256=")}


@pytest.mark.slow
def test_build_copies_upstream_files_unmodified_and_saves_working_weights(work):
    entry = BY_NAME["karras-unet"]
    record_hashes = wheel_record(wheel_or_skip(entry.name, work))
    record = build(entry, work)
    assert "error" not in record, record.get("error")
    folder = Path(record["folder"])
    for rel in entry.files:
        data = (folder / rel).read_bytes()
        if rel in entry.placeholders:
            assert data == b""
        else:
            assert hashlib.sha256(data).hexdigest() == record_hashes[rel]
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["KarrasUnet"] and config["attn_res"] == [8]
    assert "MIT" in (folder / "LICENSE").read_text() and "denoising-diffusion-pytorch` 2.3.4" in (folder / "README.md").read_text()
    weights = record["weights"]
    # KarrasUnet zero-initialises its scalar gains: left as they are, the output would be all zeros.
    assert any(name.endswith(".gain") for name in weights["perturbed"])
    assert weights["finite"] and weights["std"] > 0 and weights["reloaded_max_abs_diff"] == 0

    assert upstream_changed(folder) == [] and build(entry, work).get("reused")
    target = folder / "denoising_diffusion_pytorch" / "attend.py"
    target.write_text(target.read_text() + "\n")
    assert upstream_changed(folder) == ["denoising_diffusion_pytorch/attend.py"]
    again = build(entry, work)  # an edited upstream file is never reused: the folder is laid out anew
    assert not again.get("reused") and "error" not in again and upstream_changed(folder) == []


@pytest.mark.slow
def test_uvit_ports_end_to_end_with_exact_parity(work, tmp_path):
    wheel_or_skip("uvit", work)
    import real_models

    row = real_models.measure(BY_NAME["uvit"], work, tmp_path, timeout=600)
    assert row["status"] == "passed", row["reason"]
    assert row["parity"]["passed"] and float(row["parity"]["max_abs_diff"]) <= 1e-5
    assert "einops.pack" in row["reason"] and row["kept_imports"] == ["einops"]
