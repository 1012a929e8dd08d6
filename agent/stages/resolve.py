"""resolve: source (local folder or Hub id) -> local snapshot of configs, code and card + weight inventory.

Weights are inventoried from safetensors headers only; multi-GB files are not read (local) or
not downloaded (Hub) at this point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from agent.errors import IntegrateError
from agent.run_state import Run
from sandbox.safetensors_header import SafetensorsFormatError, read_header

SNAPSHOT_PATTERNS = ["*.json", "*.py", "*.md", "*.txt", "*.yaml", "*.yml"]
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CONFIG_NAMES = ("config.json", "params.json", "model_index.json")
SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules"}


def network_errors() -> tuple[type[BaseException], ...]:
    """Transport errors of whichever HTTP client huggingface_hub uses (httpx2, httpx, requests)."""
    errors: list[type[BaseException]] = [OSError, ConnectionError, TimeoutError]
    for name, attr in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "RequestException")):
        try:
            errors.append(getattr(__import__(name), attr))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def is_hub_id(source: str) -> bool:
    return bool(HUB_ID.match(source)) and not Path(source).exists()


def resolve(run: Run) -> dict[str, Any]:
    source = run.inputs["source"]
    snapshot = run.path("source")
    if snapshot.exists():  # an interrupted earlier attempt
        shutil.rmtree(snapshot)
    if Path(source).is_dir():
        result = _resolve_local(Path(source).resolve(), snapshot)
    elif is_hub_id(source):
        result = _resolve_hub(source, snapshot, run.inputs.get("revision"))
    else:
        raise IntegrateError(f"source not found: {source} (not a folder, and not a Hub id like org/name)")

    reference = run.inputs.get("reference")
    if reference:
        result["code_files"] = _copy_reference_code(Path(reference), snapshot / "_reference")

    config_file = next((n for n in CONFIG_NAMES if (snapshot / n).is_file()), None)
    if config_file is None:
        raise IntegrateError(f"no config.json in {source}: cannot tell how the model is configured")
    try:
        json.loads((snapshot / config_file).read_text())
    except json.JSONDecodeError as exc:
        raise IntegrateError(f"{config_file} in {source} is not valid JSON: {exc}") from None
    if not result["code_files"]:
        raise IntegrateError(f"no Python reference code in {source}; pass --reference PATH to the model code")
    if not result["weights"]:
        raise IntegrateError(f"no .safetensors weights in {source}")

    result["config_file"] = config_file
    result["model_card"] = "README.md" if (snapshot / "README.md").is_file() else None
    result["snapshot"] = str(snapshot)
    inventory = {w["file"]: w.pop("tensor_shapes") for w in result["weights"]}
    run.write_json("inventory.json", inventory)
    result["inventory"] = "inventory.json"
    return result


MAX_SNAPSHOT_FILE = 16 * 1024 * 1024  # configs, code and cards; weights are not copied


def _walk(root: Path):
    """Files under `root` as the source lays them out. A link is followed only when it points
    inside the source (its target is then what is read); a link out of the source, a FIFO or a
    device is refused, so nothing outside the folder the user named reaches the snapshot, the
    sandbox or an LLM request."""
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for d in list(dirnames):
            if os.path.islink(Path(dirpath) / d):
                _inside(Path(dirpath) / d, real_root)
                dirnames.remove(d)  # its files are walked where they really are
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                path = _inside(path, real_root)
            if not path.is_file():
                raise IntegrateError(f"{path} is not a regular file (a FIFO, socket or device); refusing to read it")
            yield Path(dirpath) / name, path


def _inside(link: Path, real_root: Path) -> Path:
    target = link.resolve()
    if target != real_root and real_root not in target.parents:
        raise IntegrateError(f"{link} is a link to {target}, outside the source; refusing to follow it (copy the file in instead)")
    return target


def _copy_file(path: Path, dest: Path) -> None:
    if path.stat().st_size > MAX_SNAPSHOT_FILE:
        raise IntegrateError(f"{path} is over {MAX_SNAPSHOT_FILE // 2**20} MB; code, configs and cards are expected to be small")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, dest, follow_symlinks=False)


def _resolve_local(root: Path, snapshot: Path) -> dict[str, Any]:
    snapshot.mkdir(parents=True)
    code_files, weights = [], []
    for listed, path in _walk(root):
        rel = listed.relative_to(root)
        if path.suffix == ".safetensors":
            weights.append(_local_weight_entry(path, str(rel)))
        elif any(rel.match(p) for p in SNAPSHOT_PATTERNS):
            _copy_file(path, snapshot / rel)
            if path.suffix == ".py":
                code_files.append(str(rel))
    return {"kind": "local", "origin": str(root), "code_files": code_files, "weights": weights}


def _local_weight_entry(path: Path, rel: str) -> dict[str, Any]:
    try:
        header = read_header(path)
    except SafetensorsFormatError as exc:
        raise IntegrateError(f"corrupt safetensors file {exc}") from None
    return {**header.summary(), "file": rel, "path": str(path), "tensor_shapes": header.shapes()}


def _copy_reference_code(reference: Path, dest: Path) -> list[str]:
    if not reference.exists():
        raise IntegrateError(f"--reference not found: {reference}")
    if reference.is_file():
        files = [(reference, reference.resolve())]
        base = reference.parent
    else:
        files = [(listed, path) for listed, path in _walk(reference) if listed.suffix == ".py"]
        base = reference
    out = []
    for listed, path in files:
        target = dest / listed.relative_to(base)
        _copy_file(path, target)
        out.append(str(target.relative_to(dest.parent)))
    return out


def _resolve_hub(repo_id: str, snapshot: Path, revision: str | None) -> dict[str, Any]:
    # Imported here: huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE when first imported.
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        NotASafetensorsRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        SafetensorsParsingError,
    )

    token = os.environ.get("HF_TOKEN") or None
    try:
        api = HfApi(token=token)
        info = api.model_info(repo_id, revision=revision, files_metadata=False)
        # Everything below reads the same commit, even if the branch moves meanwhile.
        snapshot_download(
            repo_id, revision=info.sha, allow_patterns=SNAPSHOT_PATTERNS, local_dir=snapshot, token=token
        )
        meta = api.get_safetensors_metadata(repo_id, revision=info.sha)
    except GatedRepoError:
        raise IntegrateError(f"Hub repo {repo_id} is gated: accept its terms and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise IntegrateError(f"Hub repo {repo_id} not found (or private: set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise IntegrateError(f"revision {revision!r} not found in Hub repo {repo_id}") from None
    except LocalEntryNotFoundError:
        raise IntegrateError(
            f"cannot reach the Hub for {repo_id} and it is not in the local cache (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')})"
        ) from None
    except NotASafetensorsRepoError:
        raise IntegrateError(f"Hub repo {repo_id} has no safetensors weights") from None
    except SafetensorsParsingError as exc:
        raise IntegrateError(f"corrupt safetensors file in {repo_id}: {exc}") from None
    except HfHubHTTPError as exc:
        raise IntegrateError(f"Hub request for {repo_id} failed: {str(exc).splitlines()[0]}") from None
    except network_errors() as exc:
        raise IntegrateError(f"cannot reach the Hub for {repo_id}: {exc.__class__.__name__}: {exc}") from None

    for cached in snapshot.glob(".cache"):
        shutil.rmtree(cached, ignore_errors=True)
    weights = []
    for filename, file_meta in sorted(meta.files_metadata.items()):
        tensors = {
            k: {"dtype": t.dtype, "shape": list(t.shape)} for k, t in sorted(file_meta.tensors.items())
        }
        weights.append({
            "file": filename,
            "path": None,  # fetched by the convert stage
            "tensors": len(tensors),
            "bytes": sum(t.data_offsets[1] - t.data_offsets[0] for t in file_meta.tensors.values()),
            "dtypes": sorted({t["dtype"] for t in tensors.values()}),
            "tensor_shapes": tensors,
        })
    code_files = sorted(str(p.relative_to(snapshot)) for p in snapshot.rglob("*.py"))
    return {
        "kind": "hub",
        "origin": repo_id,
        "revision": info.sha,
        "code_files": code_files,
        "weights": weights,
    }
