"""The reference side: builds the inputs for both sides, the reference model and its weights
(converted by the spec's convert() when it has one), and records the reference outputs.

It never imports the candidate. What the candidate needs from here crosses as data: its input
tensors and, when the spec converts, the converted weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sandbox.parity.errors import ParityError
from sandbox.parity.exchange import RESULT, encode_tree, save_tensors
from sandbox.parity.runside.record import run_model, state_description
from sandbox.parity.runside.spec import build, call, load_spec, seed_everything, settings


class TrackingDict(dict):
    """Records which reference keys a spec's convert() reads, to find unused weights."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def pop(self, key, *default):
        self.read.add(key)
        return super().pop(key, *default)

    def items(self):
        self.read.update(self.keys())
        return super().items()

    def values(self):
        self.read.update(self.keys())
        return super().values()


def provenance(spec, ref_state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Which reference keys each converted tensor is made of.

    convert() runs a second time on marker tensors: reference key i becomes a (free, expanded)
    tensor whose every element is i. Renames, chunk, cat, transpose and reshape keep the values,
    so the distinct values of each output name its sources, even through fused-to-split maps.
    Outputs whose values were changed by arithmetic get no sources.
    """
    keys = list(ref_state)
    if len(keys) >= 2**24:  # float32 holds the indices exactly below this
        return {}
    markers = TrackingDict({k: torch.tensor(float(i)).expand(v.shape) for i, (k, v) in enumerate(ref_state.items())})
    try:
        out = spec.convert(markers)
    except Exception:
        return {}
    sources: dict[str, list[str]] = {}
    for cand_key, value in out.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() == 0:
            continue
        found = torch.unique(value.detach().float().flatten()).tolist()
        if all(float(v).is_integer() and 0 <= v < len(keys) for v in found):
            sources[cand_key] = [keys[int(v)] for v in found]
    return sources


def describe(value: Any) -> str:
    """An input in a few words, for messages about the inputs a run used."""
    if isinstance(value, torch.Tensor):
        text = f"{str(value.dtype).removeprefix('torch.')} {list(value.shape)}"
        if value.numel() and (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            text += f" in [{float(value.min()):.3g}, {float(value.max()):.3g}]"
        return text
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return repr(value)[:40]


def _inputs(spec, seeds: list[int], tensors: dict[str, torch.Tensor]) -> tuple[list[dict], list[Any]]:
    reference_sets, candidate_trees = [], []
    for i, seed in enumerate(seeds):
        seed_everything(seed)
        made = call(spec, "inputs", seed)
        if not (isinstance(made, dict) and {"reference", "candidate"} <= made.keys()):
            raise ParityError('spec inputs(seed) must return {"reference": {...}, "candidate": {...}}')
        reference_sets.append(made["reference"])
        try:
            candidate_trees.append(encode_tree(made["candidate"], tensors, f"s{i}/"))
        except ValueError as exc:
            raise ParityError(f"spec inputs(): {exc}") from None
    return reference_sets, candidate_trees


def run_reference(spec_path: str, work: Path, seeds: list[int], device: torch.device, dtype: torch.dtype) -> None:
    spec = load_spec(spec_path)
    result: dict[str, Any] = {"side": "reference", "seeds": seeds, "settings": settings(spec)}

    input_tensors: dict[str, torch.Tensor] = {}
    reference_sets, candidate_trees = _inputs(spec, seeds, input_tensors)
    save_tensors(work / "inputs.safetensors", input_tensors)
    result["candidate_inputs"] = candidate_trees
    result["inputs_described"] = [{k: describe(v) for k, v in kwargs.items()} if isinstance(kwargs, dict) else {} for kwargs in reference_sets]

    seed_everything(seeds[0])
    reference = build(spec, "reference")
    state = reference.state_dict()
    result["state"] = state_description(reference)
    if result["settings"]["has_convert"]:
        tracked = TrackingDict(state)
        converted = call(spec, "convert", tracked)
        if not isinstance(converted, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in converted.items()):
            raise ParityError("spec convert() must return a dict of name -> tensor")
        save_tensors(work / "converted.safetensors", converted)
        result["convert"] = {"read": sorted(tracked.read), "sources": provenance(spec, state), "keys": sorted(converted)}
    elif result["settings"]["copy_weights"]:
        save_tensors(work / "state.safetensors", state)  # the verdict's side maps these by name or inference

    reference.eval().to(device, dtype)
    tensors: dict[str, torch.Tensor] = {}
    result.update(run_model(
        reference, reference_sets, seeds, spec=spec, select_hook="reference_output", side="reference",
        device=device, dtype=dtype, tensors=tensors, prefix="", trace=True,
    ))
    save_tensors(work / "outputs.safetensors", tensors)
    (work / RESULT).write_text(json.dumps(result))
