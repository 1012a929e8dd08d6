"""Try diffusers building blocks in place of reference modules and functions (runs sandboxed).

    python -m sandbox.jobs.try_blocks JOB_JSON RESULT_JSON

JOB_JSON: spec (a parity spec: it builds the reference with the run's weights and gives the
seeded inputs), reference_root, reference_modules (dotted modules of the reference code),
top_class (the model itself, never replaced), library (the folder of the block library,
agent/porting/blocks, mounted read-only), tolerance (max abs), max_calls.

The reference runs once on the spec's inputs (seed 0) while forward hooks record what every
instance of a reference class received and returned, and wrappers record the calls of the
reference's module-level functions; constructors are wrapped to record their arguments. Then,
for each reference class, each family of the library proposes settings for its first instance;
the block is built from the family's template, the weights are mapped with the mapping engine
(names, else order of use, ambiguous orders decided by running), and the block runs alone on
the recorded inputs. A setting is kept when it is exact within the tolerance on every recorded
call of every instance. The result is data: settings, dims, measured differences, reasons.
"""

from __future__ import annotations

import copy
import functools
import importlib
import importlib.util
import inspect
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sandbox.loading import import_module_from, read_json
from sandbox.mapping import match_by_name
from sandbox.parity.runside.infer import infer_for_spec
from sandbox.parity.runside.spec import build, call, load_spec, seed_everything

LIBRARY_PACKAGE = "integrate_block_library"
MAX_TRIES_PER_CLASS = 80


def main() -> int:
    job_file, result_file = sys.argv[1:3]
    job = read_json(job_file)
    start = time.monotonic()
    try:
        result = try_blocks(job)
    except Exception as exc:  # the reference is untrusted code: report, don't crash
        result = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
    result["seconds"] = round(time.monotonic() - start, 2)
    with open(result_file, "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    return 0


def load_library(folder: str):
    """The block library as a package of its own (the reference may have a module named `blocks`)."""
    init = Path(folder) / "__init__.py"
    spec = importlib.util.spec_from_file_location(LIBRARY_PACKAGE, init, submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[LIBRARY_PACKAGE] = module
    spec.loader.exec_module(module)
    return module


# --- recording ------------------------------------------------------------------------------


def snapshot(value: Any) -> Any:
    """A detached copy of tensors (and numpy arrays) inside plain containers."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if type(value).__module__ == "numpy" and hasattr(value, "copy"):
        return value.copy()
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(snapshot(v) for v in value)
    if isinstance(value, list):
        return [snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


def plain(value: Any) -> Any:
    """A constructor argument as JSON, or a marker when it is not plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)) and all(v is None or isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return {"__unplain__": type(value).__name__}


class Recorder:
    def __init__(self, lib, max_calls: int):
        self.lib = lib
        self.max_calls = max_calls
        self.on = False
        self.init_args: dict[int, dict[str, Any]] = {}
        self.init_params: dict[type, list[dict[str, Any]]] = {}
        self.calls: dict[str, list] = {}
        self.function_calls: dict[str, list] = {}
        self.signatures: dict[str, inspect.Signature] = {}

    def wrap_class(self, cls: type) -> None:
        original = cls.__init__
        try:
            sig = inspect.signature(original)
        except (TypeError, ValueError):
            return
        self.init_params[cls] = [
            {"name": p.name, "kind": p.kind.name, **({"default": plain(p.default)} if p.default is not p.empty else {})}
            for p in list(sig.parameters.values())[1:]
        ]
        records = self.init_args

        @functools.wraps(original)
        def init(instance, *args, **kwargs):
            if id(instance) not in records:  # the outermost constructor of the instance records
                try:
                    bound = sig.bind(instance, *args, **kwargs)
                    bound.apply_defaults()
                    records[id(instance)] = {k: plain(v) for k, v in list(bound.arguments.items())[1:]}
                except TypeError:
                    records[id(instance)] = {}
            original(instance, *args, **kwargs)

        cls.__init__ = init

    def wrap_function(self, key: str, fn: Any) -> Any:
        sig = inspect.signature(fn)
        self.signatures[key] = sig
        store = self.function_calls.setdefault(key, [])

        @functools.wraps(fn)
        def recorded(*args, **kwargs):
            out = fn(*args, **kwargs)
            if self.on and len(store) < self.max_calls:
                store.append(self.lib.Call(args=snapshot(args), kwargs=snapshot(kwargs), bound=_bound(sig, args, kwargs),
                                           output=snapshot(out), params=list(sig.parameters)))
            return out

        return recorded

    def hook(self, name: str, module: nn.Module):
        sig = inspect.signature(module.forward)
        self.signatures[name] = sig
        store = self.calls.setdefault(name, [])
        pending: list[tuple] = []

        def before(_m, args, kwargs):
            pending.append((snapshot(args), snapshot(kwargs)))

        def after(_m, args, kwargs, output):
            recorded_args, recorded_kwargs = pending.pop()
            if self.on and len(store) < self.max_calls:
                store.append(self.lib.Call(args=recorded_args, kwargs=recorded_kwargs, bound=_bound(sig, recorded_args, recorded_kwargs),
                                           output=snapshot(output), params=list(sig.parameters)))

        return [module.register_forward_pre_hook(before, with_kwargs=True), module.register_forward_hook(after, with_kwargs=True)]


def _bound(sig: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, Any]:
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return {}
    bound.apply_defaults()
    return dict(bound.arguments)


def reference_modules(root: Path) -> list[Any]:
    out = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        try:
            if path and Path(path).resolve().is_relative_to(root):
                out.append(module)
        except (OSError, ValueError):
            continue
    return out


def instrument(recorder: Recorder, modules: list[Any]) -> tuple[dict[type, str], dict[str, Any]]:
    """Wrap every reference nn.Module class's constructor and every module-level function;
    returns class -> 'module.Name' and 'module.name' -> function."""
    classes: dict[type, str] = {}
    functions: dict[str, Any] = {}
    wrapped: dict[int, Any] = {}
    for module in modules:
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) != module.__name__:
                continue
            if isinstance(value, type) and issubclass(value, nn.Module) and value not in classes:
                classes[value] = f"{module.__name__}.{value.__qualname__}"
                recorder.wrap_class(value)
            elif inspect.isfunction(value) and id(value) not in wrapped:
                key = f"{module.__name__}.{value.__qualname__}"
                functions[key] = value
                wrapped[id(value)] = recorder.wrap_function(key, value)
    for module in modules:  # rebind every name bound to a wrapped function (imports included)
        for attr, value in list(vars(module).items()):
            if inspect.isfunction(value) and id(value) in wrapped:
                setattr(module, attr, wrapped[id(value)])
    return classes, functions


# --- building and measuring a block ------------------------------------------------------------


def namespace(code) -> dict[str, Any]:
    ns: dict[str, Any] = {"torch": torch, "nn": nn}
    for module, name in code.imports:
        ns[name] = getattr(importlib.import_module(module), name)
    return ns


def literal(value: Any) -> str:
    return repr(value[0] if isinstance(value, list) else value)


class Adapter(nn.Module):
    """The block (and its slots) built from the family's template, called like the reference."""

    def __init__(self, code, dims: dict[str, Any], signature: inspect.Signature):
        super().__init__()
        ns = namespace(code)
        names = {}
        for placeholder, preferred, source in code.definitions:
            exec(source.format(**{placeholder: preferred}), ns)  # library code, not the reference's
            names[placeholder] = preferred
        values = {k: literal(v) for k, v in dims.items()} | names
        self.block = eval(code.main.format(**values), ns)
        for slot, template in code.slots:
            self.add_module(slot, eval(template.format(**values), ns))
        self.signature = signature
        self.glue = None
        if code.call:
            params = list(signature.parameters)
            expr = code.call.format(*[f"a[{i}]" for i in range(len(params))], self="self.block", **{s: f"self.{s}" for s, _ in code.slots}, **names)
            self.glue = eval("lambda self, a: " + expr, ns)

    def forward(self, args, kwargs):
        if self.glue is None:
            return self.block(*args, **kwargs)
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return self.glue(self, list(bound.arguments.values()))


class Called(nn.Module):
    """A reference module called with recorded (args, kwargs)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.ref = module

    def forward(self, args, kwargs):
        return self.ref(*args, **kwargs)


def tensors_of(value: Any) -> list[torch.Tensor] | None:
    """The tensors of an output, in order; None for anything that is not tensors in containers."""
    if isinstance(value, torch.Tensor):
        return [value]
    if type(value).__module__ == "numpy" and hasattr(value, "shape"):
        return [torch.from_numpy(value)]
    if isinstance(value, (tuple, list)):
        out = []
        for v in value:
            t = tensors_of(v)
            if t is None:
                return None
            out += t
        return out
    if hasattr(value, "to_tuple"):
        return tensors_of(value.to_tuple())
    return None


def difference(expected: Any, got: Any) -> tuple[float | None, str | None]:
    a, b = tensors_of(expected), tensors_of(got)
    if a is None or b is None or len(a) != len(b):
        return None, f"returns {type(got).__name__} where the reference returns {type(expected).__name__}"
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if tuple(x.shape) != tuple(y.shape):
            return None, f"output shape {tuple(y.shape)} where the reference has {tuple(x.shape)}"
        x, y = x.detach().double().cpu(), y.detach().double().cpu()
        if x.numel() == 0:
            continue
        if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            return None, "non-finite values"
        worst = max(worst, float((x - y).abs().max()))
    return worst, None


def map_weights(reference: nn.Module, block: nn.Module, first_call) -> tuple[Any, str | None]:
    ref, cand = Called(reference), block
    inputs = {"args": first_call.args, "kwargs": first_call.kwargs}
    by_name = match_by_name(ref.state_dict(), cand.state_dict())
    mapping = by_name
    if by_name.unmatched_candidate:
        mapping = infer_for_spec(ref, cand, {"reference": snapshot(inputs), "candidate": snapshot(inputs)}, by_name)
    if mapping.unmatched_candidate:
        return None, "block weights left unmapped: " + ", ".join(mapping.unmatched_candidate[:3])
    state = ref.state_dict()
    cand.load_state_dict({k: v for k, v in mapping.apply(state).items()}, strict=True)
    return mapping, None


def measure_module(family, proposal, module: nn.Module, calls: list, signature: inspect.Signature) -> dict[str, Any]:
    out: dict[str, Any] = {"family": family.name, "choice": proposal.choice, "dims": proposal.dims}
    try:
        code = family.code(proposal.choice)
        adapter = Adapter(code, proposal.dims, signature).eval()
        mapping, why = map_weights(copy.deepcopy(module).eval(), adapter, calls[0])
        if why:
            return {**out, "error": why}
        worst = 0.0
        with torch.no_grad():
            for c in calls:
                got = adapter(snapshot(c.args), snapshot(c.kwargs))
                diff, why = difference(c.output, got)
                if why:
                    return {**out, "error": why}
                worst = max(worst, diff)
        out["max_abs"] = worst
        out["mapping"] = {k.removeprefix("ref."): v for k, v in _mapping_summary(mapping).items()}
    except Exception as exc:  # a setting the block rejects, or a forward that fails
        out["error"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
    return out


def _mapping_summary(mapping) -> dict[str, Any]:
    return {"decisions": mapping.decisions, "split": len(mapping.rows), "fused": len(mapping.fused), "reordered": len(mapping.chunk_order)}


def measure_function(family, proposal, calls: list) -> dict[str, Any]:
    out: dict[str, Any] = {"family": family.name, "choice": proposal.choice, "dims": proposal.dims, "ignore": list(proposal.ignore)}
    try:
        code = family.code(proposal.choice)
        ns = namespace(code)
        expr = code.main.format(**{role: f"b[{param!r}]" for role, param in proposal.dims.items()})
        fn = eval("lambda b: " + expr, ns)
        worst = 0.0
        for c in calls:
            diff, why = difference(c.output, fn(snapshot(c.bound)))
            if why:
                return {**out, "error": why}
            worst = max(worst, diff)
        out["max_abs"] = worst
    except Exception as exc:
        out["error"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
    return out


# --- the job -----------------------------------------------------------------------------------


def try_blocks(job: dict) -> dict:
    lib = load_library(job["library"])
    tolerance = float(job["tolerance"])
    root = Path(job["reference_root"]).resolve()
    for name in job["reference_modules"]:
        try:
            import_module_from(root, name)
        except Exception:  # a script among the code files; what the model needs imports below
            continue
    recorder = Recorder(lib, int(job.get("max_calls", 2)))
    classes, functions = instrument(recorder, reference_modules(root))
    spec = load_spec(job["spec"])
    seed_everything(0)
    recorder.on = True  # functions called while the model is built (fixed position tables) count too
    try:
        model = build(spec, "reference").eval()
    finally:
        recorder.on = False
    inputs = call(spec, "inputs", 0)["reference"]

    instances: dict[type, list[tuple[str, nn.Module]]] = {}
    handles = []
    for name, module in model.named_modules():
        if name and type(module) in classes:
            instances.setdefault(type(module), []).append((name, module))
            handles += recorder.hook(name, module)
    containers = sequential_children(model, classes)
    for members in containers.values():
        for name, module, _ in members:
            handles += recorder.hook(name, module)
    recorder.on = True
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        recorder.on = False
        for h in handles:
            h.remove()

    result_classes = []
    for cls, members in instances.items():
        result_classes.append(try_class(lib, recorder, cls, classes[cls], members, tolerance))
    replaced = {entry["name"] for entry in result_classes if entry["accepted"]}
    result_containers = [try_container(lib, recorder, owner, classes[owner], attr, members, tolerance)
                         for (owner, attr), members in containers.items() if owner.__name__ not in replaced]
    result_functions = []
    for key, fn in functions.items():
        calls = recorder.function_calls.get(key) or []
        if calls:
            result_functions.append(try_function(lib, key, fn, calls, tolerance))
    return {
        "ok": True,
        "parameters": sum(p.numel() for p in model.parameters()),
        "top_class": type(model).__name__,
        "classes": result_classes,
        "containers": result_containers,
        "functions": result_functions,
        "tolerance": tolerance,
        # where every module sits (path, class module, class name): the codemod finds the call sites of
        # instances held in containers or built through a table from it
        "modules": [[n, type(m).__module__, type(m).__name__] for n, m in model.named_modules()],
    }


def sequential_children(model: nn.Module, classes: dict[type, str]) -> dict[tuple[type, str], list[tuple[str, nn.Module, nn.Module]]]:
    """Plain `nn.Sequential` attributes of reference-class instances (the model included), grouped
    by (owner class, attribute): (path, the container, its owner) each. A block may replace such
    a container as a whole (`self.time_embed = nn.Sequential(Linear, SiLU, Linear)`)."""
    out: dict[tuple[type, str], list[tuple[str, nn.Module, nn.Module]]] = {}
    for owner_name, owner in model.named_modules():
        if type(owner) not in classes:
            continue
        for attr, child in owner.named_children():
            if type(child) is nn.Sequential:
                out.setdefault((type(owner), attr), []).append((f"{owner_name}.{attr}" if owner_name else attr, child, owner))
    return out


def try_container(lib, recorder: Recorder, owner: type, qualified: str, attr: str, members: list, tolerance: float) -> dict[str, Any]:
    """Like try_class, for the containers one attribute of one reference class holds; the dims are
    expressed over the owner's constructor arguments."""
    module_name, _, _ = qualified.rpartition(".")
    entry: dict[str, Any] = {
        "name": owner.__name__, "module": module_name, "attribute": attr,
        "instances": [{"name": n, "parameters": sum(p.numel() for p in m.parameters()), "calls": len(recorder.calls.get(n, [])),
                       "init_args": recorder.init_args.get(id(o), {})} for n, m, o in members],
        "tries": [], "accepted": None,
    }
    return _try_members(lib, recorder, entry, [(n, m) for n, m, _ in members], tolerance)


def try_class(lib, recorder: Recorder, cls: type, qualified: str, members: list, tolerance: float) -> dict[str, Any]:
    module_name, _, name = qualified.rpartition(".")
    entry: dict[str, Any] = {
        "name": cls.__name__,
        "module": module_name,
        "own_init": "__init__" in vars(cls) or cls.__init__.__qualname__.startswith(cls.__qualname__),
        "init_params": recorder.init_params.get(cls, []),
        "instances": [
            {"name": n, "parameters": sum(p.numel() for p in m.parameters()), "calls": len(recorder.calls.get(n, [])),
             "init_args": recorder.init_args.get(id(m), {}),
             "keywords": sorted({k for c in recorder.calls.get(n, []) for k in c.kwargs})}
            for n, m in members
        ],
        "tries": [],
        "accepted": None,
    }
    return _try_members(lib, recorder, entry, members, tolerance)


def _try_members(lib, recorder: Recorder, entry: dict[str, Any], members: list, tolerance: float) -> dict[str, Any]:
    """Every family's candidates for the first instance, until one is exact on every instance."""
    silent = [n for n, _ in members if not recorder.calls.get(n)]
    if silent:
        entry["reason"] = f"{len(silent)} of {len(members)} instances never ran on the seeded inputs (first: {silent[0]})"
        return entry
    first_name, first = members[0]
    tries = 0
    for family in lib.FAMILIES:
        if family.kind != "module":
            continue
        proposals = propose(family, first, recorder.calls[first_name])
        if isinstance(proposals, str):
            entry["tries"].append({"family": family.name, "fits": False, "reason": proposals})
            continue
        for proposal in proposals:
            if tries >= MAX_TRIES_PER_CLASS:
                break
            tries += 1
            measured = measure_module(family, proposal, first, recorder.calls[first_name], recorder.signatures[first_name])
            measured["instance"] = first_name
            entry["tries"].append(measured)
            if measured.get("max_abs") is None or measured["max_abs"] > tolerance:
                continue
            others = all_instances(family, proposal, members[1:], recorder, tolerance)
            if isinstance(others, str):
                measured["others"] = others
                continue
            entry["accepted"] = {"family": family.name, "choice": proposal.choice,
                                 "dims": {first_name: proposal.dims, **others["dims"]},
                                 "max_abs": max(measured["max_abs"], others["max_abs"]),
                                 "calls": sum(len(recorder.calls[n]) for n, _ in members)}
            return entry
    return entry


def propose(family, target: Any, calls: list) -> list | str:
    """The family's candidates; a family that trips over an unusual module declines it."""
    try:
        return family.propose(target, calls)
    except Exception as exc:
        return f"could not be read ({exc.__class__.__name__}: {str(exc)[:120]})"


def all_instances(family, proposal, members: list, recorder: Recorder, tolerance: float) -> dict[str, Any] | str:
    """The same choice, proven on every other instance (with that instance's own dims)."""
    dims, worst = {}, 0.0
    for name, module in members:
        proposals = propose(family, module, recorder.calls[name])
        wanted = family.code(proposal.choice)  # the same code at every instantiation (settings that write nothing may differ)
        same = [p for p in proposals if p.choice == proposal.choice or family.code(p.choice) == wanted] if not isinstance(proposals, str) else []
        if not same:
            return f"does not fit instance {name}" + (f": {proposals}" if isinstance(proposals, str) else "")
        measured = measure_module(family, same[0], module, recorder.calls[name], recorder.signatures[name])
        if measured.get("max_abs") is None or measured["max_abs"] > tolerance:
            return f"instance {name}: " + (measured.get("error") or f"max abs {measured['max_abs']:.3g}")
        dims[name] = same[0].dims
        worst = max(worst, measured["max_abs"])
    return {"dims": dims, "max_abs": worst}


def try_function(lib, key: str, fn: Any, calls: list, tolerance: float) -> dict[str, Any]:
    module_name, _, name = key.rpartition(".")
    entry: dict[str, Any] = {"name": name, "module": module_name, "calls": len(calls), "tries": [], "accepted": None,
                             "params": list(inspect.signature(fn).parameters)}
    for family in lib.FAMILIES:
        if family.kind != "function":
            continue
        proposals = propose(family, fn, calls)
        if isinstance(proposals, str):
            entry["tries"].append({"family": family.name, "fits": False, "reason": proposals})
            continue
        for proposal in proposals:
            measured = measure_function(family, proposal, calls)
            entry["tries"].append(measured)
            if measured.get("max_abs") is not None and measured["max_abs"] <= tolerance:
                entry["accepted"] = {"family": family.name, "choice": proposal.choice, "roles": proposal.dims,
                                     "ignore": list(proposal.ignore), "max_abs": measured["max_abs"]}
                return entry
    return entry


if __name__ == "__main__":
    sys.exit(main())
