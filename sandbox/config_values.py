"""Constructor arguments a factory passes as dataclass instances, written as JSON a config.json can hold.

A dataclass instance becomes a dict of its init fields plus DATACLASS_KEY naming its class (tuples
it holds are listed under TUPLE_FIELDS_KEY, JSON has only lists); lists, tuples and dicts are
followed. `rebuild_source` is the one function, as source text, that turns such JSON back into the
objects: the port and the parity spec both carry it (neither may import integrate).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

DATACLASS_KEY = "_dataclass"
TUPLE_FIELDS_KEY = "_tuple_fields"

REBUILD_FUNCTION = "config_dataclasses"

rebuild_source = f'''
def {REBUILD_FUNCTION}(value, classes):
    """config.json holds the reference's dataclass arguments as dicts naming their class
    ({DATACLASS_KEY!r}); the reference's code reads the objects, so they are rebuilt first."""
    if isinstance(value, dict) and {DATACLASS_KEY!r} in value:
        tuples = set(value.get({TUPLE_FIELDS_KEY!r}, ()))
        fields = {{}}
        for k, v in value.items():
            if k not in ({DATACLASS_KEY!r}, {TUPLE_FIELDS_KEY!r}):
                v = {REBUILD_FUNCTION}(v, classes)
                fields[k] = tuple(v) if k in tuples else v
        return classes[value[{DATACLASS_KEY!r}]](**fields)
    if isinstance(value, dict):
        return {{k: {REBUILD_FUNCTION}(v, classes) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return type(value)({REBUILD_FUNCTION}(v, classes) for v in value)
    return value
'''


class Unrepresentable(ValueError):
    """A value (at `where`) that neither JSON nor a dataclass of JSON values can hold."""

    def __init__(self, where: str, kind: str):
        super().__init__(f"{where} is a {kind}")
        self.where, self.kind = where, kind


def to_config_json(value: Any, where: str, classes: dict[str, type]) -> Any:
    """`value` as JSON; every dataclass met is added to `classes` (name -> class). Raises
    Unrepresentable naming the first part that cannot be written."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        name = cls.__name__
        if classes.setdefault(name, cls) is not cls:
            raise Unrepresentable(where, f"dataclass {name} from {cls.__module__}, and another dataclass of that name is passed too")
        out: dict[str, Any] = {DATACLASS_KEY: name}
        tuples = []
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            item = getattr(value, f.name)
            if isinstance(item, tuple):
                tuples.append(f.name)
            out[f.name] = to_config_json(item, f"{where}.{f.name}", classes)
        if tuples:
            out[TUPLE_FIELDS_KEY] = tuples
        return out
    if isinstance(value, (list, tuple)):
        return [to_config_json(v, f"{where}[{i}]", classes) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value) or DATACLASS_KEY in value:
            raise Unrepresentable(where, "dict whose keys are not plain strings")
        return {k: to_config_json(v, f"{where}[{k!r}]", classes) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        json.dumps(value)  # NaN/inf pass here as JSON's extension; config.json stores them the same way
        return value
    raise Unrepresentable(where, f"{type(value).__module__}.{type(value).__qualname__}")


def has_dataclass(value: Any) -> bool:
    if isinstance(value, dict):
        return DATACLASS_KEY in value or any(has_dataclass(v) for v in value.values())
    if isinstance(value, list):
        return any(has_dataclass(v) for v in value)
    return False
