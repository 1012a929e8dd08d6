"""The forward/output contract of skills/models.md: `forward(..., return_dict: bool = True)`
returns the family's output dataclass (a diffusers `BaseOutput`), and a plain tuple of the same
tensors when `return_dict=False`. A forward without `return_dict` breaks it by itself."""

from __future__ import annotations

import dataclasses
from typing import Any

from sandbox.compliance.port import INPUT_SEEDS, Port, describe_signature, worst_difference
from sandbox.compliance.result import CheckResult, failed, passed

NAME = "return_dict"
TITLE = "return_dict: False -> tuple, True -> output dataclass"


def _type_name(value: Any) -> str:
    return type(value).__name__


def _is_output_dataclass(value: Any) -> bool:
    from diffusers.utils import BaseOutput

    return isinstance(value, BaseOutput) and dataclasses.is_dataclass(value)


def check(port: Port) -> CheckResult:
    model = port.model()
    params = port.forward_parameters(model)
    kwargs = {k: v for k, v in port.inputs(INPUT_SEEDS[0]).items() if k != "return_dict"}
    if "return_dict" not in params:
        out = port.forward(model, kwargs)
        return failed(
            f"{describe_signature(port)} has no return_dict parameter and returns {_type_name(out)}; "
            "the model contract (skills/models.md) wants return_dict: bool = True and an output dataclass "
            "(a tuple when return_dict=False)",
            signature=describe_signature(port), returns=_type_name(out),
        )
    default = params["return_dict"].default
    as_tuple = port.forward(model, kwargs, return_dict=False)
    as_dataclass = port.forward(model, kwargs, return_dict=True)
    evidence = {
        "signature": describe_signature(port),
        "default": repr(default),
        "return_dict_false": _type_name(as_tuple),
        "return_dict_true": _type_name(as_dataclass),
    }
    problems = []
    if default is not True:
        problems.append(f"return_dict defaults to {default!r}, not True")
    if not isinstance(as_tuple, tuple):
        problems.append(f"return_dict=False returns {_type_name(as_tuple)}, not a tuple")
    if not _is_output_dataclass(as_dataclass):
        problems.append(f"return_dict=True returns {_type_name(as_dataclass)}, not an output dataclass (diffusers BaseOutput)")
    if not problems:
        worst = worst_difference(as_tuple, as_dataclass)
        evidence["tuple_vs_dataclass"] = worst
        if worst["max_abs_diff"] != 0.0:
            problems.append(f"the tuple and the dataclass hold different tensors ({worst['tensor']}: max abs {worst['max_abs_diff']:.3g})")
        else:
            evidence["fields"] = [f.name for f in dataclasses.fields(as_dataclass)]
    if problems:
        return failed("; ".join(problems), **evidence)
    return passed(f"return_dict=False gives a tuple, return_dict=True a {_type_name(as_dataclass)} with the same tensors", **evidence)
