"""The seeded test inputs of a run, made from their recipe.

A recipe is a list of {"name", "kind", ...} entries, one per forward argument provided:

    randn    {"shape"}                     standard normal floats
    uniform  {"shape", "low", "high"}      floats in [low, high)
    randint  {"shape", "low", "high"}      int64 in [low, high)
    mask     {"shape", "mode"}             "bool": True where attended; "additive": 0.0 / -10000.0.
                                           Every row has an attended and a masked position
                                           (the first and the last), whichever way the model
                                           reads True, so no softmax row is empty.
    value    {"value"}                     a Python literal (an int size, a flag)
    tuple    {"items": [entries]}          a tuple of the items' values

Values are drawn from one `torch.Generator` seeded with `seed`, in recipe order. The parity
spec's `inputs(seed)` and the generated test's `make_inputs` are rendered from the same recipe
by templates/parity/inputs.py.j2, which must draw exactly what this module draws (a test
checks the two agree); this module is what the sandboxed probe uses.
"""

from __future__ import annotations

from typing import Any

MASKED_VALUE = -10000.0


def make_inputs(recipe: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {entry["name"]: value_of(entry, g) for entry in recipe}


def value_of(entry: dict[str, Any], g) -> Any:
    import torch

    kind = entry["kind"]
    if kind == "randn":
        return torch.randn(entry["shape"], generator=g)
    if kind == "uniform":
        return torch.rand(entry["shape"], generator=g) * (entry["high"] - entry["low"]) + entry["low"]
    if kind == "randint":
        return torch.randint(entry["low"], entry["high"], entry["shape"], generator=g)
    if kind == "mask":
        last = entry["shape"][-1] - 1
        keep = torch.rand(entry["shape"], generator=g).lt(0.75)
        keep = keep.index_fill(-1, torch.tensor([0]), True).index_fill(-1, torch.tensor([last]), False)
        return keep if entry["mode"] == "bool" else torch.where(keep, 0.0, MASKED_VALUE)
    if kind == "value":
        return entry["value"]
    if kind == "tuple":
        return tuple(value_of(item, g) for item in entry["items"])
    raise ValueError(f"unknown input kind {kind!r}")
