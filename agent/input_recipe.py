"""The seeded inputs of a run as data, checked before anything renders them into code.

`analyze.inputs` (docs/inputs.md) is proposed by the sandboxed probe and may come back from a
branch's manifest: templates/parity/inputs.py.j2 renders it into the parity spec and the
generated test, so every field is checked here first. Names must be identifiers, shapes lists
of integers, bounds finite numbers, values literals, comments one line of printable ASCII. The
one entry of kind "file" carries the inputs file's code by design (it runs only in the sandbox,
and in the generated test the author's code is as visible as the model's).
"""

from __future__ import annotations

import re
from typing import Any

KINDS = {"randn", "uniform", "randint", "mask", "value", "tuple"}


class InputsError(ValueError):
    """Inputs data that must not be rendered."""


def identifier(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise InputsError(f"{name!r} is not an argument name")
    return name


def _ints(shape: Any) -> list[int]:
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 1 << 20 for n in shape):
        raise InputsError(f"invalid shape {shape!r}")
    return list(shape)


def _number(x: Any) -> int | float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x or abs(x) > 1e12:
        raise InputsError(f"invalid bound {x!r}")
    return x


def text(value: Any) -> str:
    """One line of printable ASCII: safe inside a # comment of a generated file."""
    return re.sub(r"[^\x20-\x7e]", "?", str(value))[:200]


def _entry(e: Any, top: bool) -> dict:
    if not isinstance(e, dict) or e.get("kind") not in KINDS:
        raise InputsError(f"unknown input kind {e.get('kind') if isinstance(e, dict) else e!r}")
    kind = e["kind"]
    out: dict[str, Any] = {"name": identifier(e.get("name"))} if top else {}
    out["kind"] = kind
    if kind in ("randn", "uniform", "randint", "mask"):
        out["shape"] = _ints(e.get("shape"))
    if kind in ("uniform", "randint"):
        out["low"], out["high"] = _number(e.get("low")), _number(e.get("high"))
    if kind == "mask":
        if e.get("mode") not in ("bool", "additive") or not out["shape"] or out["shape"][-1] < 2:
            raise InputsError(f"invalid mask {e!r}")
        out["mode"] = e["mode"]
    if kind == "value":
        value = e.get("value")
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise InputsError(f"non-literal value {value!r}")
        out["value"] = value
    if kind == "tuple":
        out["items"] = [_entry(i, top=False) for i in e.get("items", [])]
    if top:
        out["why"] = text(e.get("why", ""))
    return out


def _described(v: Any) -> dict:
    if isinstance(v, dict) and "shape" in v:
        return {"shape": _ints(v["shape"]), "dtype": text(v.get("dtype", ""))}
    if isinstance(v, dict) and "items" in v:
        return {"items": [_described(i) for i in v["items"]]}
    return {"value": text(v.get("value", "") if isinstance(v, dict) else v)}


def check_inputs(inputs: Any) -> list[dict]:
    """The inputs, as plain checked data (raises InputsError): a recipe, or one file entry."""
    if not isinstance(inputs, list):
        raise InputsError("inputs must be a list")
    if inputs and isinstance(inputs[0], dict) and inputs[0].get("kind") == "file":
        e = inputs[0]
        if len(inputs) != 1 or not isinstance(e.get("source"), str) or e.get("returns") not in ("pair", "kwargs"):
            raise InputsError("an inputs-file entry must be the only one, with its source and what it returns")
        arguments = e.get("arguments") or {}
        return [{"kind": "file", "origin": text(e.get("origin", "")), "source": e["source"], "returns": e["returns"],
                 "arguments": {identifier(k): _described(v) for k, v in arguments.items()}}]
    return [_entry(e, top=True) for e in inputs]


def check_decisions(decisions: Any) -> list[dict]:
    """Per-argument decisions of the probe, as plain checked data."""
    out = []
    for d in decisions if isinstance(decisions, list) else []:
        entry = {"name": identifier(d.get("name")), "decision": "provided" if d.get("decision") == "provided" else "left out",
                 "reason": text(d.get("reason", ""))}
        consumer = d.get("consumer") or {}
        if isinstance(consumer.get("type"), str):
            entry["read_by"] = text(consumer["type"])
        if consumer.get("dims") in (1, 2, 3) and "shape" in consumer:  # a ConvNd read the tensor itself
            entry["conv_dims"] = consumer["dims"]
        out.append(entry)
    return out
