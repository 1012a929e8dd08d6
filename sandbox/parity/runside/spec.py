"""Loading a parity spec and calling into it; seeding."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from typing import Any

import torch

from sandbox.parity.errors import ParityError


def load_spec(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise ParityError(f"spec not found: {path}")
    spec = importlib.util.spec_from_file_location(f"parity_spec_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ParityError(f"spec {path.name} fails to load: {exc.__class__.__name__}: {exc}") from exc
    missing = [f for f in ("reference", "candidate", "inputs") if not callable(getattr(module, f, None))]
    if missing:
        raise ParityError(f"spec {path.name} must define {', '.join(missing)}()")
    return module


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA generators too
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def call(spec, name: str, *args) -> Any:
    try:
        return getattr(spec, name)(*args)
    except Exception as exc:
        raise ParityError(f"spec {name}() failed: {exc.__class__.__name__}: {exc}") from exc


def build(spec, side: str) -> torch.nn.Module:
    model = call(spec, side)
    if not isinstance(model, torch.nn.Module):
        raise ParityError(f"spec {side}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


def settings(spec) -> dict[str, Any]:
    """The spec's plain settings, as data the verdict reads (it never imports the spec)."""

    def names(value) -> dict[str, str]:
        value = value or {}
        if not isinstance(value, dict):
            raise ParityError("unloaded_ok / unused_ok must be dicts of name -> reason")
        return {str(k): str(v) for k, v in value.items()}

    tolerance = getattr(spec, "tolerance", None) or {}
    if not isinstance(tolerance, dict) or not all(isinstance(v, (int, float)) for v in tolerance.values()):
        raise ParityError("tolerance must be a dict such as {'max_abs': 1e-5, 'cosine': 0.99999}")
    return {
        "tolerance": {k: float(v) for k, v in tolerance.items() if k in ("max_abs", "cosine")},
        "copy_weights": bool(getattr(spec, "copy_weights", True)),
        "has_convert": callable(getattr(spec, "convert", None)),
        "has_saved": callable(getattr(spec, "saved", None)),
        "unloaded_ok": names(getattr(spec, "unloaded_ok", None)),
        "unused_ok": names(getattr(spec, "unused_ok", None)),
    }


def cast(value: Any, device: torch.device, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
    if isinstance(value, dict):
        return {k: cast(v, device, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(cast(v, device, dtype) for v in value)
    return value
