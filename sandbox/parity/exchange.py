"""What the two sides of a parity run hand to the verdict, and how it is stored.

Each side runs in its own sandboxed process and leaves files in its own folder: small JSON
(`result.json`) and tensors in safetensors files. Nothing else crosses: no pickles, no code.
The readers here are used by the trusted verdict, so they open files through
`sandbox.safe_files` (no links, regular files only, sizes capped) and check every field.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from sandbox import safe_files

RESULT = "result.json"
MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_TENSOR_FILE_BYTES = 16 * 1024**3
# Layer traces keep at most this many elements per module output (a fixed stride over the
# flattened tensor, the same positions on both sides), so a trace of a large model stays small.
TRACE_SAMPLE = 65536


class ExchangeError(ValueError):
    """A side left a file that is missing, malformed or not what it should be."""


# -- output trees -------------------------------------------------------------------------------

def flatten_output(value: Any, path: str = "output") -> list[tuple[str, Any]]:
    """Every leaf of a model output with its path: tensors, and the non-tensor leaves too (so a
    structure difference is visible). Tuples, lists, dicts, dataclasses (diffusers' BaseOutput
    included) and nesting of these."""
    if isinstance(value, torch.Tensor):
        return [(path, value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: list[tuple[str, Any]] = []
        for f in dataclasses.fields(value):
            out += flatten_output(getattr(value, f.name), f"{path}.{f.name}")
        return out
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += flatten_output(v, f"{path}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            out += flatten_output(v, f"{path}[{i}]")
        return out
    return [(path, None if value is None else type(value).__name__)]


# -- keyword-argument trees (inputs) --------------------------------------------------------------

def encode_tree(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """JSON for `value` with every tensor moved into `tensors` under a fresh key."""
    if isinstance(value, torch.Tensor):
        key = f"{prefix}{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ExchangeError("input dictionaries must have string keys")
        return {"__dict__": {k: encode_tree(v, tensors, prefix) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"__tuple__" if isinstance(value, tuple) else "__list__": [encode_tree(v, tensors, prefix) for v in value]}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return {"__float__": repr(value)} if not math.isfinite(value) else value
    raise ExchangeError(f"inputs may hold tensors, numbers, strings, None and containers of these, not {type(value).__name__}")


def decode_tree(node: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"__tensor__"}:
            try:
                return tensors[node["__tensor__"]]
            except KeyError:
                raise ExchangeError(f"input tensor {node['__tensor__']!r} missing") from None
        if set(node) == {"__dict__"}:
            return {k: decode_tree(v, tensors) for k, v in node["__dict__"].items()}
        if set(node) == {"__tuple__"}:
            return tuple(decode_tree(v, tensors) for v in node["__tuple__"])
        if set(node) == {"__list__"}:
            return [decode_tree(v, tensors) for v in node["__list__"]]
        if set(node) == {"__float__"}:
            return float(node["__float__"])
        raise ExchangeError("malformed input tree")
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    raise ExchangeError("malformed input tree")


# -- tensors ------------------------------------------------------------------------------------

def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> None:
    """Run side: contiguous CPU copies, so shared or strided storage never trips safetensors."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, os.fspath(path))


def load_tensors(root: str | os.PathLike, rel: str, keys: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Trusted side: read a safetensors file a side wrote (no links, size capped)."""
    from safetensors import SafetensorError, safe_open

    with safe_files.open_regular(root, rel, max_bytes=MAX_TENSOR_FILE_BYTES) as fd:
        try:
            with safe_open(safe_files.proc_path(fd), framework="pt") as fh:
                wanted = list(fh.keys()) if keys is None else list(keys)
                present = set(fh.keys())
                missing = [k for k in wanted if k not in present]
                if missing:
                    raise ExchangeError(f"{rel}: tensor {missing[0]!r} missing")
                return {k: fh.get_tensor(k) for k in wanted}
        except SafetensorError as exc:
            raise ExchangeError(f"{rel}: not a valid safetensors file ({exc})") from None


def trace_sample(t: torch.Tensor) -> torch.Tensor:
    """The elements of a module output kept in a trace: all of them, or a fixed stride."""
    flat = t.detach().reshape(-1)
    if flat.numel() > TRACE_SAMPLE:
        step = math.ceil(flat.numel() / TRACE_SAMPLE)
        flat = flat[::step]
    return flat.float().cpu()


def read_result(folder: str | os.PathLike) -> dict[str, Any]:
    try:
        data = safe_files.read_json(folder, RESULT, max_bytes=MAX_RESULT_BYTES)
    except FileNotFoundError:
        raise ExchangeError(f"{Path(folder).name}: the side left no {RESULT}") from None
    except (OSError, ValueError) as exc:
        raise ExchangeError(f"{Path(folder).name}/{RESULT}: {exc}") from None
    if not isinstance(data, dict):
        raise ExchangeError(f"{Path(folder).name}/{RESULT}: not a JSON object")
    return data
