"""Import the reference model, build it from its config, work out its forward inputs, and record
what one forward on those inputs executes (runs sandboxed).

    python -m sandbox.jobs.probe_reference JOB_JSON OUT_JSON

JOB_JSON: root, module, class, kwargs (a kwargs payload, see sandbox.loading.kwargs_from_payload),
config (config.json as given, for sizes), factory ("module:function" building the model from
the whole config, or null), inputs_file (a file defining inputs(seed), or null).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback

from sandbox.config_values import Unrepresentable, has_dataclass, to_config_json
from sandbox.loading import HUB_KEYS, import_module_from, kwargs_from_payload, load_class

META_ABOVE_PARAMETERS = 50_000_000  # larger models are probed on the meta device


class JobError(Exception):
    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def main() -> int:
    # torch.compile'd reference functions run eagerly here: shapes and executed lines are the
    # same, and a compiled function would hide its lines from the record (and take minutes)
    os.environ["TORCHDYNAMO_DISABLE"] = "1"
    job_file, out = sys.argv[1:3]
    with open(job_file) as fh:
        job = json.load(fh)
    try:
        payload = probe(job)
    except JobError as exc:
        payload = {"ok": False, "stage": exc.stage, "error": str(exc)}
    except Exception as exc:  # the reference is untrusted: any failure is reported, not raised
        payload = {"ok": False, "stage": "probe", "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
    with open(out, "w") as fh:
        json.dump(payload, fh, indent=2, default=repr)
    return 0


def _failure(stage: str, exc: Exception) -> JobError:
    return JobError(stage, f"{exc.__class__.__name__}: {exc}".splitlines()[0][:400])


def probe(job: dict) -> dict:
    try:
        cls = load_class(job["root"], job["module"], job["class"])
    except Exception as exc:
        raise _failure("import", exc) from None
    from sandbox.call_sites import CallSites

    sites = CallSites(job["root"])  # construction counts: einops layers and init-time calls run there
    built_by = None
    try:
        with sites.recording():
            if job.get("factory"):
                model, built_by = build_with_factory(job, cls)
            else:
                model = cls(**kwargs_from_payload(job["kwargs"]))
    except JobError:
        raise
    except Exception as exc:
        raise _failure("instantiate", exc) from None
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    result = {
        "ok": True,
        "parameters": parameters,
        "state_dict": {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in model.state_dict().items()},
        "forward": describe_forward(model),
        "submodules": sorted({type(m).__name__ for m in model.modules()}),
        "built_by": built_by,
        # submodules, parameters and buffers are not in __dict__: a config key of the same name hides them in a ModelMixin
        "module_attributes": sorted({*model._modules, *model._parameters, *model._buffers}),
    }
    if job.get("inputs_file"):
        from sandbox.forward_trace import Prober

        kwargs, result["inputs_file"] = inputs_from_file(job["inputs_file"])
        seen = Prober(model).trial(kwargs)  # what first reads each of the author's inputs
        result["decisions"] = [{"name": k, "decision": "provided", "reason": "from the inputs file",
                                "consumer": seen.consumers.get(k) or seen.readers.get(k)} for k in kwargs]
    else:
        from sandbox.forward_trace import Prober
        from sandbox.input_probe import InputSearch, MissingPackage, UndecidedInputs, signature_params
        from sandbox.seeded_inputs import make_inputs

        prober = Prober(meta_copy(job, cls, model), fallback=model) if parameters > META_ABOVE_PARAMETERS else Prober(model)
        try:
            recipe, decisions = InputSearch(prober, signature_params(model), job.get("config") or {}).decide()
        except MissingPackage as exc:
            return {**result, "ok": False, "stage": "forward", "error": str(exc), "forward_error": str(exc)}
        except UndecidedInputs as exc:
            return {**result, "ok": False, "stage": "inputs", "error": str(exc)}
        result["recipe"], result["decisions"] = recipe, decisions
        kwargs = make_inputs(recipe, 0)
    result.update(run_recorded(model, kwargs, sites))
    if "forward_error" in result:
        return {**result, "ok": False, "stage": "forward"}
    return result


def describe_forward(model) -> list[dict]:
    out = []
    for p in inspect.signature(model.forward).parameters.values():
        entry = {"name": p.name, "required": p.default is inspect.Parameter.empty, "kind": p.kind.name}
        if p.default is not inspect.Parameter.empty:
            entry["default"] = repr(p.default)[:80]
        if p.annotation is not inspect.Parameter.empty:
            entry["annotation"] = (p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation))[:80]
        out.append(entry)
    return out


def build_with_factory(job: dict, cls) -> tuple[object, dict]:
    """Build through the repository's own factory, recording the arguments the top class got."""
    module_name, _, fn_name = job["factory"].partition(":")
    try:
        factory = getattr(import_module_from(job["root"], module_name), fn_name)
    except Exception as exc:
        raise JobError("import", f"factory {job['factory']}: {exc.__class__.__name__}: {exc}") from None
    original = cls.__init__
    captured: dict = {}

    def recording_init(self, *args, **kwargs):
        if type(self) is cls and not captured:
            bound = inspect.signature(original).bind(self, *args, **kwargs)
            for name, value in list(bound.arguments.items())[1:]:
                kind = inspect.signature(original).parameters[name].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    captured.update(value)
                elif kind is inspect.Parameter.VAR_POSITIONAL:
                    if value:
                        raise JobError("instantiate", f"factory {job['factory']} passes positional *{name} to {cls.__name__}; it cannot become a config")
                else:
                    captured[name] = value
        original(self, *args, **kwargs)

    cls.__init__ = recording_init
    try:
        model = factory({k: v for k, v in job["config"].items() if k not in HUB_KEYS})
    finally:
        cls.__init__ = original
    if not isinstance(model, cls):
        inner = [n for n, m in model.named_modules() if type(m) is cls] if hasattr(model, "named_modules") else []
        raise JobError("instantiate", f"factory {job['factory']} returned {type(model).__name__}, not {cls.__name__}"
                       + (f" (it holds one at {inner[0]!r})" if inner else ""))
    arguments, tuples, classes = {}, [], {}
    for name, value in captured.items():
        if isinstance(value, tuple):
            tuples.append(name)
        try:
            arguments[name] = to_config_json(value, name, classes)
        except Unrepresentable as exc:
            raise JobError("instantiate", f"factory {job['factory']} passes {exc.where} = {exc.kind} to {cls.__name__}, which config.json cannot "
                           "hold (JSON values, and dataclasses, lists and dicts of them, can): make the factory pass plain values, "
                           f"or build {cls.__name__} yourself and list its arguments in config.json") from None
    entry = sys.modules[cls.__module__]
    dataclass_types = {}
    for name, dc in classes.items():
        if dc.__qualname__ != name:
            raise JobError("instantiate", f"factory {job['factory']} passes a {dc.__qualname__} to {cls.__name__}: a dataclass defined inside a "
                           "function or class cannot be rebuilt from config.json; define it at the top level of its module")
        dataclass_types[name] = {"module": dc.__module__, "in_entry": getattr(entry, name, None) is dc}
    return model, {"factory": job["factory"], "arguments": arguments, "tuple_args": tuples, "dataclasses": dataclass_types,
                   "dataclass_args": [n for n, v in arguments.items() if has_dataclass(v)]}


def meta_copy(job: dict, cls, model):
    """The model again, on the meta device (no memory, no compute), for the input search."""
    import torch

    try:
        with torch.device("meta"):
            copy = cls(**kwargs_from_payload(job["kwargs"])) if not job.get("factory") else None
        return copy.to("meta") if copy is not None else model
    except Exception:
        return model


def inputs_from_file(path: str) -> tuple[dict, dict]:
    """The author's inputs(0): the reference side's kwargs, and what the file returned."""
    import torch

    try:
        spec = importlib.util.spec_from_file_location("integrate_inputs", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = module.inputs(0)
    except Exception as exc:
        raise JobError("inputs", f"the inputs file failed: {exc.__class__.__name__}: {exc}".splitlines()[0][:400]) from None
    if not isinstance(out, dict):
        raise JobError("inputs", f"the inputs file's inputs(seed) returned {type(out).__name__}, not a dict")
    pair = set(out) == {"reference", "candidate"} and all(isinstance(v, dict) for v in out.values())
    kwargs = out["reference"] if pair else out

    def describe(v):
        if isinstance(v, torch.Tensor):
            return {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
        if isinstance(v, tuple):
            return {"items": [describe(i) for i in v]}
        return {"value": repr(v)[:80]}

    return kwargs, {"returns": "pair" if pair else "kwargs", "arguments": {k: describe(v) for k, v in kwargs.items()},
                    "candidate_arguments": sorted(out["candidate"]) if pair else sorted(kwargs)}


def run_recorded(model, kwargs: dict, sites) -> dict:
    """One forward on the chosen inputs, recording the reference lines it executes."""
    import torch

    try:
        with torch.no_grad(), sites.recording():
            out = model(**kwargs)
    except Exception as exc:
        return {"forward_error": f"{exc.__class__.__name__}: {exc}".splitlines()[0][:400]}
    from sandbox.parity.runside.tracer import first_tensor

    first = first_tensor(out)
    described = {"output_shape": list(first.shape), "output_finite": bool(torch.isfinite(first).all())} if first is not None else {}
    return {**described, **sites.to_json()}


if __name__ == "__main__":
    sys.exit(main())
