"""The verdict: read both sides' files, compare every output tensor, check the weights were all
used, pair the layer traces, and say passed or not, and where the port first goes astray."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import torch

from sandbox.mapping import WeightMapping, match_by_name
from sandbox.parity.errors import ParityError
from sandbox.parity.exchange import ExchangeError, load_tensors, read_result
from sandbox.parity.presets import PRESETS
from sandbox.parity.verdict.align import align
from sandbox.parity.verdict.compare import INF_METRICS, compare, nonfinite, within


def pair_leaves(ref: list, cand: list) -> tuple[list[tuple[str, str, str, str]], str | None]:
    """(reference path, reference key, candidate path, candidate key) for each output tensor.
    Same paths pair by path; otherwise, the same number of tensors pair in order (a tensor
    against a dataclass's only field, a tuple against named fields)."""
    rt = [(p, k) for p, k, _ in ref if k]
    ct = [(p, k) for p, k, _ in cand if k]
    if [p for p, _ in rt] == [p for p, _ in ct] or len(rt) == len(ct):
        return [(rp, rk, cp, ck) for (rp, rk), (cp, ck) in zip(rt, ct, strict=True)], None
    return [], (
        f"output structures differ: the reference returns {len(rt)} tensors ({', '.join(p for p, _ in rt[:6])}), "
        f"the candidate {len(ct)} ({', '.join(p for p, _ in ct[:6])})"
    )


def _worst(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return dict(INF_METRICS)
    return {
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "mean_abs_diff": max(r["mean_abs_diff"] for r in rows),
        "cosine": min(r["cosine"] for r in rows),
        "psnr": min(r["psnr"] for r in rows),
    }


def _coverage(settings: dict, ref: dict, cand: dict, mapping: WeightMapping | None) -> list[str]:
    if not settings["copy_weights"]:
        return []
    problems = []
    load = cand.get("load")
    if load is None:
        return ["the candidate received no weights"]
    if load["unexpected"]:
        problems.append(f"{len(load['unexpected'])} converted keys the candidate does not have (first: {load['unexpected'][0]})")
    if load["shape_mismatch"]:
        k, got, want = load["shape_mismatch"][0]
        problems.append(f"shape mismatch for {k}: {tuple(got)} vs candidate {tuple(want)}")
    unloaded = [k for k in load["unloaded"] if k not in settings["unloaded_ok"]]
    if unloaded:
        problems.append(f"{len(unloaded)} candidate parameters/buffers left unloaded (first: {unloaded[0]})")
    if settings["has_convert"]:
        conv = ref["convert"]
        used = {k for keys in conv["sources"].values() for k in keys} | set(conv["read"])
        unused = sorted(set(ref["state"]) - used)
    else:
        unused = list(mapping.unmatched_reference) if mapping else []
    unused = [k for k in unused if k not in settings["unused_ok"]]
    if unused:
        problems.append(f"{len(unused)} reference weights unused (first: {unused[0]})")
    return problems


def alignment_mapping(settings: dict, ref: dict, cand: dict, mapping: WeightMapping | None) -> WeightMapping:
    """candidate key -> reference keys, for pairing the traces and for the report."""
    if settings["has_convert"]:
        conv = ref["convert"]
        sources = {k: v for k, v in conv["sources"].items() if v}
        m = WeightMapping(pairs={k: (sources.get(k) or [k])[0] for k in conv["keys"]}, source="spec")
        m.sources = sources
        m.unmatched_candidate = sorted(set(cand["state"]) - set(conv["keys"]))
        m.unmatched_reference = sorted(set(ref["state"]) - {k for v in sources.values() for k in v} - set(conv["read"]))
        return m
    if mapping is not None:
        return mapping
    shapes = lambda state: {k: tuple(v["shape"]) for k, v in state.items()}  # noqa: E731
    m = match_by_name(shapes(ref["state"]), shapes(cand["state"]))
    m.source = "none (copy_weights = False)"
    return m


def _layers(ref: dict, cand: dict, ref_dir: Path, cand_dir: Path, mapping: WeightMapping, tol: dict) -> list[dict[str, Any]]:
    rt, ct = ref["trace"], cand["trace"]
    pairs = align(rt, ct, {k: mapping.reference_keys(k) for k in mapping.pairs})
    ref_t = load_tensors(ref_dir, "outputs.safetensors", [rt[i]["tensor"] for i, _ in pairs])
    cand_t = load_tensors(cand_dir, "outputs.safetensors", [ct[j]["tensor"] for _, j in pairs])
    rows = []
    for i, j in pairs:
        r, c = rt[i], ct[j]
        row: dict[str, Any] = {
            "reference_module": r["name"] if r["call"] == 0 else f"{r['name']}#{r['call']}",
            "candidate_module": c["name"] if c["call"] == 0 else f"{c['name']}#{c['call']}",
            "shape": r["shape"],
        }
        if r["shape"] != c["shape"]:
            # Same module, different layout (a port may reshape inside a module): not comparable
            # here; the output comparison still judges the numbers.
            row.update(max_abs_diff=None, cosine=None, diverged=None, note=f"candidate shape {c['shape']}")
        else:
            a, b = ref_t[r["tensor"]], cand_t[c["tensor"]]
            m = compare(a, b)
            scale = max(1.0, m["reference_abs_max"]) if math.isfinite(m["reference_abs_max"]) else 1.0
            cos_ok = m["cosine"] >= tol["cosine"] or a.numel() < 2
            row.update(max_abs_diff=m["max_abs_diff"], cosine=m["cosine"], diverged=not (m["max_abs_diff"] <= tol["max_abs"] * scale and cos_ok))
            if row["diverged"] and r["keys"]:
                order = _chunk_order(a, b, r["shape"], tol["max_abs"] * scale)
                if order:  # a modulation projection whose weights the mapping reordered (shift/scale -> scale/shift)
                    row.update(diverged=False, note=f"candidate output chunks in the order {order}")
        rows.append(row)
    return rows


def _chunk_order(a, b, shape: list[int], max_abs: float) -> tuple[int, ...] | None:
    """The order of the last axis' halves or thirds in which `b` equals `a`, if one does: a
    layer whose rows the mapping reordered computes the same numbers in another order; what
    uses them is compared further on, and the outputs decide."""
    if not shape or a.numel() != math.prod(shape) or b.numel() != a.numel():
        return None  # a strided sample of the layer: the chunks cannot be told apart
    a, b = a.reshape(shape), b.reshape(shape)
    for n in (2, 3):
        if a.dim() == 0 or a.shape[-1] % n:
            continue
        ref_chunks = a.chunk(n, dim=-1)
        for order in itertools.permutations(range(n)):
            if order != tuple(range(n)) and compare(torch.cat([ref_chunks[i] for i in order], dim=-1), b)["max_abs_diff"] <= max_abs:
                return order
    return None


def decide(reference_dir: Path, candidate_dir: Path, *, dtype: str, device: str, mapping: WeightMapping | None = None,
           mapping_problems: list[str] = ()) -> dict[str, Any]:
    """The parity report. Raises ParityError when the run cannot be judged (exit 2)."""
    try:
        ref, cand = read_result(reference_dir), read_result(candidate_dir)
        settings = ref["settings"]
        tol = {**PRESETS[dtype], **settings["tolerance"]}
        seeds = ref["seeds"]
        problems = list(mapping_problems) + _coverage(settings, ref, cand, mapping)
        ref_out = load_tensors(reference_dir, "outputs.safetensors", [k for leaves in ref["outputs"] for _, k, _ in leaves if k])
        cand_keys = [k for leaves in [*cand["outputs"], *cand.get("saved", [])] for _, k, _ in leaves if k]
        cand_out = load_tensors(candidate_dir, "outputs.safetensors", cand_keys)
        if len(cand["outputs"]) != len(seeds):
            raise ExchangeError("the candidate side ran a different number of input sets")
        outputs, structure = [], None
        for i, seed in enumerate(seeds):
            pairs, structure = pair_leaves(ref["outputs"][i], cand["outputs"][i])
            for rp, rk, cp, ck in pairs:
                a, b = ref_out[rk], cand_out[ck]
                if nonfinite(a):
                    described = ", ".join(f"{k}: {v}" for k, v in (ref.get("inputs_described") or [{}])[i].items())
                    raise ParityError(f"the reference itself produces NaN/inf on these inputs (seed {seed}, {rp}); inputs: {described or 'see the spec'}")
                m = compare(a, b) if a.shape == b.shape else {**INF_METRICS, "note": f"shapes differ: reference {list(a.shape)}, candidate {list(b.shape)}"}
                outputs.append({"seed": seed, "reference": rp, "candidate": cp, "shape": list(a.shape), **m, "passed": a.shape == b.shape and within(m, tol)})
        if structure:
            problems.append(structure)
        worst = _worst(outputs)
        for row in outputs:
            if "note" in row:
                problems.append(f"output {row['reference']} (seed {row['seed']}): {row['note']}")
                break
        failing = [r for r in outputs if not r["passed"] and "note" not in r]
        if failing:
            bad = max(failing, key=lambda r: r["max_abs_diff"])
            problems.append(
                f"outputs differ: max abs {bad['max_abs_diff']:.3g} (tolerance {tol['max_abs']:g}), cosine {bad['cosine']:.6f} "
                f"(at least {tol['cosine']}) at {bad['candidate']}, seed {bad['seed']}"
            )

        align_map = alignment_mapping(settings, ref, cand, mapping)
        layers = _layers(ref, cand, reference_dir, candidate_dir, align_map, tol)
        diverged = next((row for row in layers if row["diverged"] is True), None)
        if diverged and not problems:
            # The output can hide a small error (a wrong eps, say) under the tolerance; a layer cannot.
            problems.append(f"layer {diverged['reference_module']} diverges (max abs {diverged['max_abs_diff']:.3g}) although the final output is within tolerance")

        saved = None
        if "saved" in cand:
            rows = []
            for i in range(len(seeds)):
                pairs, _ = pair_leaves(ref["outputs"][i], cand["saved"][i])
                for _rp, rk, _cp, ck in pairs:
                    a, b = ref_out[rk], cand_out[ck]
                    rows.append({**(compare(a, b) if a.shape == b.shape else INF_METRICS), "ok": a.shape == b.shape})
            saved = {**_worst(rows)}
            saved["passed"] = bool(rows) and all(r["ok"] and within(r, tol) for r in rows)
            if not saved["passed"]:
                problems.append("the candidate reloaded from its saved folder does not match the reference")
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ParityError(f"a side left a malformed result ({exc.__class__.__name__}: {exc})") from None
    except ExchangeError as exc:
        raise ParityError(str(exc)) from None

    passed = not problems
    first = None
    if not passed and diverged:
        first = {k: diverged[k] for k in ("reference_module", "candidate_module", "max_abs_diff")}
    head_key = next((k for _, k, _ in ref["outputs"][0] if k), None)
    head = ref_out[head_key].detach().float().flatten()[:8].tolist() if head_key else []
    return {
        "passed": passed,
        "problems": problems,
        **worst,
        "tolerance": tol,
        "dtype": dtype,
        "device": device,
        "seed": seeds[0],
        "seeds": seeds,
        "outputs": outputs,
        "output_shape": outputs[0]["shape"] if outputs else [],
        "reference_output_head": head,
        "mapping": align_map.summary(),
        "first_divergence": first,
        "saved": saved,
        "layers": layers,
    }
