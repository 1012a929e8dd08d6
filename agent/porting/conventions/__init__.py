"""The deterministic conventions pass: libcst codemods that move a parity-green port into
diffusers' model conventions, one module per convention group. Each codemod is layout or naming
only (the numbers computed are the port's) and reports what it changed and what it left; the
conventions stage proves the result by parity.

Groups, in the order they run (names first, so messages written later use the final names):
    class names   classes that shadow diffusers' get the model's prefix (class_names.py)
    config        constructor arguments in diffusers' vocabulary (config_names.py)
    forward       forward argument names, return_dict, output dataclass (forward.py)
    leftovers     prints, asserts, research config types, version checks, unreachable code (leftovers.py)
    permutations  adjacent transpose/permute chains folded (chains.py)
    model class   docstring, gradient checkpointing, capability flags (model_class.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst

from agent.porting.conventions.chains import fold_permutations
from agent.porting.conventions.class_names import unshadow_class_names
from agent.porting.conventions.config_names import config_vocabulary
from agent.porting.conventions.cstutil import method, top_class
from agent.porting.conventions.docstrings import argument_docs
from agent.porting.conventions.forward import forward_conventions
from agent.porting.conventions.leftovers import remove_leftovers
from agent.porting.conventions.model_class import model_class_conventions
from agent.porting.conventions.report import GroupReport
from agent.porting.conventions.target import Target

GROUPS = ("class names", "config", "forward", "leftovers", "permutations", "model class")

__all__ = ["GROUPS", "Conventions", "GroupReport", "Target", "apply_conventions"]


@dataclass
class Conventions:
    """The rewritten file and what the later stages need to build and call it."""

    code: str
    reports: list[GroupReport]
    candidate_config: dict[str, Any]
    forward_renames: dict[str, str] = field(default_factory=dict)
    config_conversion: dict[str, Any] = field(default_factory=dict)
    output_class: str | None = None
    flags: dict[str, str] = field(default_factory=dict)

    @property
    def checkpointing(self) -> bool:
        return "_supports_gradient_checkpointing" in self.flags


def apply_conventions(source: str, target: Target, groups: Sequence[str] = GROUPS,
                      without_checkpointing: str | None = None) -> Conventions:
    """Run the named groups on `source` (the port's model file), in GROUPS order;
    `without_checkpointing` (why) leaves gradient checkpointing out of the model-class group."""
    module = cst.parse_module(source)
    cls = top_class(module, target.class_name)
    reference_docs = argument_docs(cls, method(cls, "__init__")) if cls is not None else ("", {})
    reports: list[GroupReport] = []
    out = Conventions(code=source, reports=reports, candidate_config=dict(target.config))
    conversion: dict[str, Any] = {}
    for group in GROUPS:
        if group not in groups:
            continue
        if group == "leftovers":
            module, report = remove_leftovers(module, target)
        elif group == "permutations":
            module, report = fold_permutations(module)
        elif group == "class names":
            module, report = unshadow_class_names(module, target)
        elif group == "config":
            module, report = config_vocabulary(module, target)
            conversion = report.data.get("conversion", {})
            if "candidate_config" in report.data:
                out.candidate_config = report.data["candidate_config"]
                target = replace(target, config=out.candidate_config)
            out.config_conversion = conversion
        elif group == "forward":
            module, report = forward_conventions(module, target)
            out.forward_renames = report.data.get("forward_renames", {})
            out.output_class = report.data.get("output_class")
        else:
            module, report = model_class_conventions(module, target, reference_docs, conversion.get("renames", {}),
                                                     conversion.get("per_head", {}), without_checkpointing)
            out.flags = report.data.get("flags", {})
        reports.append(report)
    out.code = module.code
    return out
