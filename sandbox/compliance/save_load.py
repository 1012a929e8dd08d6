"""save_pretrained then from_pretrained must give the same state dict, the same config and the
same outputs. The reload starts from a different random state than the first build, so state
that the forward needs but that is neither saved nor rebuilt the same by `__init__` (a
non-persistent buffer drawn at random, or filled after construction) shows up as a difference."""

from __future__ import annotations

import tempfile

import torch

from sandbox.compliance.port import BUILD_SEED, INPUT_SEEDS, Port, worst_difference
from sandbox.compliance.result import CheckResult, failed, passed
from sandbox.parity.runside.spec import seed_everything

NAME = "save_load"
TITLE = "save/load round trip"
RELOAD_SEED = BUILD_SEED + 1


def _non_persistent_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    saved = set(model.state_dict())
    return {k: v for k, v in model.named_buffers() if k not in saved}


def check(port: Port) -> CheckResult:
    first = port.build(BUILD_SEED)
    kwargs = port.inputs(INPUT_SEEDS[0])
    before = port.forward(first, kwargs)
    with tempfile.TemporaryDirectory(prefix="compliance-save-") as folder:
        first.save_pretrained(folder)
        seed_everything(RELOAD_SEED)
        second = port.cls.from_pretrained(folder).to(port.device, torch.float32).eval()
    after = port.forward(second, kwargs)

    a, b = first.state_dict(), second.state_dict()
    lost, gained = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or not torch.equal(a[k], b[k]))
    buffers_a, buffers_b = _non_persistent_buffers(first), _non_persistent_buffers(second)
    buffers_changed = sorted(
        k for k in buffers_a
        if k not in buffers_b or buffers_a[k].shape != buffers_b[k].shape or not torch.equal(buffers_a[k], buffers_b[k])
    )
    config_a, config_b = dict(getattr(first, "config", {}) or {}), dict(getattr(second, "config", {}) or {})
    config_changed = sorted(k for k in set(config_a) | set(config_b) if not k.startswith("_") and config_a.get(k) != config_b.get(k))
    worst = worst_difference(before, after)
    evidence = {
        "state_dict_keys": len(a),
        "keys_lost": lost[:20],
        "keys_gained": gained[:20],
        "tensors_changed": changed[:20],
        "non_persistent_buffers_changed": buffers_changed[:20],
        "config_changed": config_changed[:20],
        "output": worst,
        "input_seed": INPUT_SEEDS[0],
    }
    problems = []
    if lost:
        problems.append(f"{len(lost)} state dict keys lost on reload (first: {lost[0]})")
    if gained:
        problems.append(f"{len(gained)} keys appear only after reload (first: {gained[0]})")
    if changed:
        problems.append(f"{len(changed)} tensors change value, dtype or shape (first: {changed[0]})")
    if config_changed:
        problems.append(f"config entries change: {', '.join(config_changed[:5])}")
    if worst["max_abs_diff"] != 0.0:
        where = f"{worst['tensor']} differs by max abs {worst['max_abs_diff']:.3g}" + (f" ({worst['problem']})" if "problem" in worst else "")
        why = ""
        if buffers_changed:
            why = f"; non-persistent buffers not rebuilt the same at init: {', '.join(buffers_changed[:5])}"
        elif not (lost or gained or changed):
            why = "; the state dicts are identical, so state outside them is not rebuilt the same"
        problems.append(f"outputs differ after the round trip: {where}{why}")
    if problems:
        return failed("; ".join(problems), **evidence)
    return passed(f"{len(a)} tensors and the config identical after save_pretrained/from_pretrained; outputs identical", **evidence)
