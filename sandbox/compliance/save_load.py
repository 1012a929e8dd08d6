"""Loading and saving keep the port whole.

Three builds of the port are compared: (a) its constructor, with torch's initialisation, and the
converted weights loaded with `load_state_dict` (what the class computes with these weights);
(b) `from_pretrained` of the converted folder (what a user gets; diffusers skips torch's
`nn.init` functions while building it); (c) `from_pretrained` of the folder (b) writes with
`save_pretrained`. Each step must keep the state dict, the non-persistent buffers, the config and
the outputs identical. Every build starts from a different random state, so state that the
forward needs but that is neither saved nor rebuilt the same by `__init__` (a non-persistent
buffer set by an `nn.init` function, drawn at random, or filled after construction) shows up,
and the buffers that differ are named."""

from __future__ import annotations

import tempfile
from typing import Any

import torch

from sandbox.compliance.port import BUILD_SEED, INPUT_SEEDS, Port, worst_difference
from sandbox.compliance.result import CheckResult, failed, passed
from sandbox.parity.runside.spec import seed_everything

NAME = "save_load"
TITLE = "save/load round trip"
LOAD_SEED, RELOAD_SEED = BUILD_SEED + 1, BUILD_SEED + 2


def _non_persistent_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    saved = set(model.state_dict())
    return {k: v for k, v in model.named_buffers() if k not in saved}


def _same(x: torch.Tensor, y: torch.Tensor | None) -> bool:
    return y is not None and x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)


def compare_builds(first: torch.nn.Module, second: torch.nn.Module, out_first: Any, out_second: Any) -> tuple[dict[str, Any], list[str]]:
    """Evidence and problems of `second` against `first`."""
    a, b = first.state_dict(), second.state_dict()
    lost, gained = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if not _same(a[k], b[k]))
    buffers_a, buffers_b = _non_persistent_buffers(first), _non_persistent_buffers(second)
    buffers_changed = sorted(k for k in buffers_a if not _same(buffers_a[k], buffers_b.get(k)))
    config_a, config_b = dict(getattr(first, "config", {}) or {}), dict(getattr(second, "config", {}) or {})
    config_changed = sorted(k for k in set(config_a) | set(config_b) if not k.startswith("_") and config_a.get(k) != config_b.get(k))
    worst = worst_difference(out_first, out_second)
    evidence = {
        "state_dict_keys": len(a), "keys_lost": lost[:20], "keys_gained": gained[:20], "tensors_changed": changed[:20],
        "non_persistent_buffers_changed": buffers_changed[:20], "config_changed": config_changed[:20], "output": worst,
    }
    problems = []
    if lost:
        problems.append(f"{len(lost)} state dict keys lost (first: {lost[0]})")
    if gained:
        problems.append(f"{len(gained)} state dict keys appear (first: {gained[0]})")
    if changed:
        problems.append(f"{len(changed)} tensors change value, dtype or shape (first: {changed[0]})")
    if config_changed:
        problems.append(f"config entries change: {', '.join(config_changed[:5])}")
    if buffers_changed:
        problems.append(f"non-persistent buffers not rebuilt the same: {', '.join(buffers_changed[:5])}")
    if worst["max_abs_diff"] != 0.0:
        where = f"{worst['tensor']} differs by max abs {worst['max_abs_diff']:.3g}" + (f" ({worst['problem']})" if "problem" in worst else "")
        if not (lost or gained or changed or buffers_changed):
            where += "; the state dicts and buffers are identical, so state outside them differs"
        problems.append(f"outputs differ: {where}")
    return evidence, problems


def check(port: Port) -> CheckResult:
    kwargs = port.inputs(INPUT_SEEDS[0])
    constructed, load_keys = port.construct(BUILD_SEED)
    steps: list[tuple[str, torch.nn.Module, torch.nn.Module]] = []
    seed_everything(LOAD_SEED)
    if port.weights_dir:
        loaded = port.cls.from_pretrained(port.weights_dir).to(port.device, torch.float32).eval()
        steps.append(("from_pretrained of the converted folder, against the constructor + load_state_dict", constructed, loaded))
    else:
        loaded = constructed
    with tempfile.TemporaryDirectory(prefix="compliance-save-") as folder:
        loaded.save_pretrained(folder)
        seed_everything(RELOAD_SEED)
        reloaded = port.cls.from_pretrained(folder).to(port.device, torch.float32).eval()
    steps.append(("save_pretrained then from_pretrained", loaded, reloaded))

    outputs = {id(m): port.forward(m, kwargs) for m in (constructed, loaded, reloaded)}
    evidence: dict[str, Any] = {"input_seed": INPUT_SEEDS[0], "load_state_dict": load_keys, "steps": []}
    problems = []
    if load_keys["missing"] or load_keys["unexpected"]:
        problems.append(f"the converted folder does not load whole with load_state_dict: "
                        f"{len(load_keys['missing'])} keys missing, {len(load_keys['unexpected'])} unexpected")
    for what, first, second in steps:
        step_evidence, step_problems = compare_builds(first, second, outputs[id(first)], outputs[id(second)])
        evidence["steps"].append({"step": what, **step_evidence})
        problems += [f"{what}: {p}" for p in step_problems]
    if problems:
        return failed("; ".join(problems), **evidence)
    n = evidence["steps"][-1]["state_dict_keys"]
    return passed(f"{n} tensors, buffers and the config identical through from_pretrained and a save_pretrained round trip; outputs identical", **evidence)
