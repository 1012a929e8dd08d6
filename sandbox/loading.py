"""Import code by location, the way every sandbox job and parity spec needs to."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


def import_module_from(root: str | Path, module: str):
    """Import `module` (dotted, relative to `root`) with `root` first on sys.path."""
    root = str(Path(root).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(module)


def load_class(root: str | Path, module: str, name: str) -> type:
    return getattr(import_module_from(root, module), name)


def module_name_for(path: str | Path, root: str | Path) -> str:
    rel = Path(path).resolve().relative_to(Path(root).resolve()).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


# config.json keys that describe the file, not the model.
HUB_KEYS = {"architectures", "model_type", "_name_or_path", "torch_dtype", "transformers_version", "_class_name",
            "_diffusers_version", "_factory"}

# A kwargs payload may name the arguments whose reference default is a tuple: JSON has only lists.
TUPLE_ARGS_KEY = "__tuple_args__"


# Or: the reference takes one configuration object (a dict or a namespace) under one argument.
CONFIG_OBJECT_KEY = "__config_object__"


def build_config_object(kind: str, values: dict[str, Any]) -> Any:
    from types import SimpleNamespace

    return dict(values) if kind == "mapping" else SimpleNamespace(**values)


def kwargs_from_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The constructor's keyword arguments from a payload (tuples restored, config object built)."""
    kwargs = dict(payload)
    obj = kwargs.pop(CONFIG_OBJECT_KEY, None)
    if obj is not None:
        return {obj["param"]: build_config_object(obj["kind"], obj["values"])}
    for name in kwargs.pop(TUPLE_ARGS_KEY, []):
        if isinstance(kwargs.get(name), list):
            kwargs[name] = tuple(kwargs[name])
    return kwargs


def read_kwargs(path: str | Path) -> dict[str, Any]:
    return kwargs_from_payload(read_json(path))
