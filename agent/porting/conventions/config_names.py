"""Config vocabulary: the model's constructor arguments renamed to diffusers' names
(vocabulary.CONFIG_NAMES), and a model width split into heads x per-head channels the way DiT,
PixArt and SD3 take it, when that is exact for the reference's values.

A rename touches the parameter and every use of that variable inside `__init__` (by scope), and
`self.config.<old>` reads in the class; attributes (`self.depth = depth`) keep their names, so
module names and weights do not change. The returned conversion converts a reference config.
"""

from __future__ import annotations

from typing import Any

import libcst as cst
import libcst.matchers as m

from agent.porting.conventions.cstutil import (
    code,
    docstring_index,
    map_class,
    method,
    names_in_function,
    rename_locals,
    statement,
    top_class,
)
from agent.porting.conventions.report import GroupReport
from agent.porting.conventions.target import Target
from agent.porting.conventions.vocabulary import (
    HEADS,
    LABEL_ALIASES,
    PER_HEAD,
    WIDTH_ALIASES,
    config_names_for,
)
from sandbox.config_renames import rename_config


def _literal(node: cst.BaseExpression | None) -> Any:
    if node is None:
        return None
    try:
        import ast

        return ast.literal_eval(code(node))
    except (ValueError, SyntaxError):
        return ...


def _takes_class_labels(target: Target, forward: cst.FunctionDef | None) -> bool:
    if any(i.get("kind") == "randint" for i in target.inputs):
        return True
    names = {p.name.value for p in forward.params.params} if forward else set()
    return bool(names & LABEL_ALIASES)


class _RenameConfigReads(cst.CSTTransformer):
    """self.config.<old> -> self.config.<new>."""

    def __init__(self, renames: dict[str, str]):
        self.renames = renames

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        if m.matches(updated.value, m.Attribute(value=m.Name("self"), attr=m.Name("config"))) and updated.attr.value in self.renames:
            return updated.with_changes(attr=cst.Name(self.renames[updated.attr.value]))
        return updated


def _plan(target: Target, init: cst.FunctionDef, forward: cst.FunctionDef | None, report: GroupReport) -> dict[str, str]:
    params = [p.name.value for p in init.params.params[1:]] + [p.name.value for p in init.params.kwonly_params]
    table = config_names_for(target.family)
    renames: dict[str, str] = {}
    for name in params:
        entry = table.get(name)
        if entry is None or name == entry.name:
            continue
        if entry.needs_class_labels and not _takes_class_labels(target, forward):
            report.skip(f"{name} -> {entry.name}", "diffusers uses this name for class labels; this model's forward takes none")
            continue
        if entry.name in params:
            report.skip(f"{name} -> {entry.name}", f"the constructor already has an argument `{entry.name}`")
            continue
        if entry.name in renames.values():
            other = next(k for k, v in renames.items() if v == entry.name)
            report.skip(f"{name} -> {entry.name}", f"`{other}` is renamed to `{entry.name}` already")
            continue
        renames[name] = entry.name
    return renames


def _per_head_plan(target: Target, init: cst.FunctionDef, renames: dict[str, str], report: GroupReport) -> dict[str, Any] | None:
    """The width argument to replace by attention_head_dim, when exact."""
    if target.family != "transformers":
        return None
    params = {p.name.value: p for p in init.params.params[1:]}
    widths = [w for w in WIDTH_ALIASES if w in params]
    heads = [n for n in params if renames.get(n, n) == HEADS]
    if not widths:
        return None
    if len(widths) > 1:
        report.skip(f"{', '.join(widths)} -> {PER_HEAD}", "more than one width argument")
        return None
    width = widths[0]
    if not heads:
        report.skip(f"{width} -> {PER_HEAD}", "no number-of-heads argument to divide it by")
        return None
    if any(renames.get(n, n) == PER_HEAD for n in params):
        report.skip(f"{width} -> {PER_HEAD}", f"the model already takes a per-head size ({PER_HEAD})")
        return None
    head = heads[0]
    w_default, h_default = _literal(params[width].default), _literal(params[head].default)
    w_value, h_value = target.config.get(width, w_default), target.config.get(head, h_default)
    if not (isinstance(w_value, int) and isinstance(h_value, int) and h_value > 0 and w_value % h_value == 0):
        report.skip(f"{width} -> {PER_HEAD}", f"{width}={w_value!r} is not a whole multiple of {head}={h_value!r} in this config")
        return None
    per_head_default: Any = None
    if params[width].default is not None:
        if not (isinstance(w_default, int) and isinstance(h_default, int) and h_default > 0 and w_default % h_default == 0):
            report.skip(f"{width} -> {PER_HEAD}", f"the defaults {width}={w_default!r}, {head}={h_default!r} do not divide")
            return None
        per_head_default = w_default // h_default
    return {"width": width, "heads": head, "default": per_head_default, "defaults": {width: w_default, head: h_default}}


def _split_width(init: cst.FunctionDef, split: dict[str, Any], heads_name: str) -> cst.FunctionDef:
    """`hidden_size=64` -> `attention_head_dim=16`; the body first rebuilds `hidden_size`."""
    params = []
    for p in init.params.params:
        if p.name.value == split["width"]:
            default = cst.Integer(str(split["default"])) if split["default"] is not None else None
            p = p.with_changes(name=cst.Name(PER_HEAD), default=default, annotation=p.annotation,
                               equal=p.equal if default is not None else cst.MaybeSentinel.DEFAULT)
        params.append(p)
    body = list(init.body.body)
    at = docstring_index(body)
    line = statement(f"{split['width']} = {heads_name} * {PER_HEAD}  # the width, from diffusers' heads x per-head channels\n")
    return init.with_changes(params=init.params.with_changes(params=params), body=init.body.with_changes(body=[*body[:at], line, *body[at:]]))


def config_vocabulary(module: cst.Module, target: Target) -> tuple[cst.Module, GroupReport]:
    """Rename the model's constructor arguments; report.data["conversion"] converts a reference
    config (renames, per_head, defaults) and report.data["candidate_config"] is the run's."""
    report = GroupReport("config")
    cls = top_class(module, target.class_name)
    init = method(cls, "__init__") if cls else None
    if init is None:
        report.skip("constructor arguments", f"no {target.class_name}.__init__ at the top level of the file")
        return module, report
    renames = _plan(target, init, method(cls, "forward"), report)
    split = _per_head_plan(target, init, renames, report)
    if renames:
        module, applied, refused = rename_locals(module, method(top_class(module, target.class_name), "__init__"), renames)
        for old, why in refused.items():
            report.skip(f"{old} -> {renames[old]}", why)
        renames = applied
    if split:
        heads_name = renames.get(split["heads"], split["heads"])
        if PER_HEAD in names_in_function(module, method(top_class(module, target.class_name), "__init__")):
            report.skip(f"{split['width']} -> {PER_HEAD}", f"`{PER_HEAD}` is already used inside __init__()")
            split = None
        else:
            module = map_class(module, target.class_name, lambda c: c.with_changes(body=c.body.with_changes(body=[
                _split_width(s, split, heads_name) if isinstance(s, cst.FunctionDef) and s.name.value == "__init__" else s
                for s in c.body.body
            ])))
    if renames:
        module = map_class(module, target.class_name, lambda c: c.visit(_RenameConfigReads(renames)))
        for old, new in renames.items():
            report.changed(f"{old} -> {new}")
    if split:
        report.changed(f"{split['width']} -> {renames.get(split['heads'], split['heads'])} x {PER_HEAD} "
                       f"({PER_HEAD} = {split['width']} // {split['heads']}, exact for this config)")
    conversion = {
        "renames": renames,
        "per_head": {split["width"]: [PER_HEAD, split["heads"]]} if split else {},
        "defaults": {k: v for k, v in split["defaults"].items() if v is not None} if split else {},
    }
    report.data["conversion"] = conversion
    report.data["candidate_config"] = rename_config(target.config, conversion["renames"], conversion["per_head"], conversion["defaults"])
    return module, report
