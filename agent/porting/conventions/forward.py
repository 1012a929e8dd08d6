"""Forward and output conventions: diffusers' argument names (`hidden_states` or `sample`,
`timestep`, `class_labels`, `encoder_hidden_states`, masks), `return_dict: bool = True`, and
the family's output dataclass (`Transformer2DModelOutput`, `UNet2DOutput`, ...; a new
`BaseOutput` dataclass with named fields for a tuple output), a tuple when `return_dict=False`.

Which name an argument gets is decided from the analysis' input recipe (what was fed to it:
an image-shaped tensor, timesteps, integer labels, a token sequence, a mask over which sequence)
and, for arguments the recipe does not provide, from unambiguous spellings. What the model
returns is taken from the measured reference outputs (the port's parity report), not guessed.
"""

from __future__ import annotations

import re
import textwrap

import libcst as cst
import libcst.matchers as m

from agent.porting.config_capture import insert_after_imports
from agent.porting.conventions import docstrings
from agent.porting.conventions.cstutil import (
    code,
    docstring_text,
    map_class,
    method,
    module_alias,
    names_in_function,
    rename_locals,
    statement,
    top_class,
)
from agent.porting.conventions.report import GroupReport
from agent.porting.conventions.target import Target
from agent.porting.conventions.vocabulary import (
    CONTEXT_ALIASES,
    CONTEXT_MASK_WORDS,
    FORWARD_NAMES,
    IMAGE_ALIASES,
    LABEL_ALIASES,
    POOLED_ALIASES,
    TIME_ALIASES,
)

# family, sample rank, conditioned on encoder states -> (dataclass, standalone module, in-tree module)
_OUTPUTS = {
    "transformers": ("Transformer2DModelOutput", "diffusers.models.modeling_outputs", "..modeling_outputs"),
    ("unets", 3): ("UNet1DOutput", "diffusers.models.unets.unet_1d", ".unet_1d"),
    ("unets", 4, False): ("UNet2DOutput", "diffusers.models.unets.unet_2d", ".unet_2d"),
    ("unets", 4, True): ("UNet2DConditionOutput", "diffusers.models.unets.unet_2d_condition", ".unet_2d_condition"),
    ("unets", 5): ("UNet3DConditionOutput", "diffusers.models.unets.unet_3d_condition", ".unet_3d_condition"),
    "autoencoders": ("DecoderOutput", "diffusers.models.autoencoders.vae", ".vae"),  # forward = decode(encode(sample))
}
# families whose main input diffusers calls `sample` (transformers: `hidden_states`)
SAMPLE_FAMILIES = ("unets", "autoencoders")
_OUTPUT_PATH = re.compile(r"^output(\[(\d+)\])?$")


def _positions(name: str) -> bool:
    return bool({"ids", "id", "pos", "position", "positions", "coords", "grid"} & set(name.lower().split("_")))


def _is_mask(name: str) -> bool:
    return "mask" in name.lower()


def plan_renames(forward: cst.FunctionDef, target: Target, report: GroupReport) -> dict[str, str]:
    """reference argument -> diffusers argument, for the model's forward."""
    params = [p.name.value for p in forward.params.params[1:]] + [p.name.value for p in forward.params.kwonly_params]
    primary_name = "sample" if target.family in SAMPLE_FAMILIES else "hidden_states"

    def recipe(name: str) -> tuple[str | None, list]:
        r = target.recipe(name) or {}
        return r.get("kind"), r.get("shape") or []

    primary = next((n for n in params[:1] if recipe(n)[0] == "randn" or n in IMAGE_ALIASES), None)
    # token sequences the model could attend to; position ids (`img_ids`, `pos`) are not, and a
    # sequence with a conditioning name (`txt`, `context`) is the one when there are several
    sequences = [n for n in params if n != primary and recipe(n)[0] == "randn" and len(recipe(n)[1]) == 3 and not _positions(n)]
    sequences.sort(key=lambda n: n not in CONTEXT_ALIASES)
    context_len = recipe(sequences[0])[1][1] if sequences else None
    wanted: dict[str, str] = {}
    for name in params:
        kind, shape = recipe(name)
        if name in FORWARD_NAMES:
            continue
        if name == primary or (kind == "randn" and len(shape) >= 4):
            wanted[name] = primary_name
        elif _is_mask(name):
            words = name.lower()
            if any(w in words for w in CONTEXT_MASK_WORDS):
                wanted[name] = "encoder_attention_mask"
            elif kind == "mask" and context_len is not None and shape and shape[-1] == context_len:
                wanted[name] = "encoder_attention_mask"  # as long as the conditioning sequence
            elif kind == "mask" or not sequences and not any(n in CONTEXT_ALIASES for n in params):
                wanted[name] = "attention_mask"  # no conditioning sequence it could cover
            else:
                report.skip(f"forward argument `{name}`", "a mask, but over which sequence (input tokens or conditioning) is not clear")
        elif kind == "uniform" or (not kind and name in TIME_ALIASES):
            wanted[name] = "timestep"
        elif kind == "randn" and len(shape) == 2 and name in POOLED_ALIASES:
            wanted[name] = "pooled_projections"  # one float vector per sample, as SD3's and Flux's pooled text
        elif kind == "randint" or (not kind and name in LABEL_ALIASES):
            wanted[name] = "class_labels"
        elif name in sequences[:1] or (not kind and name in CONTEXT_ALIASES):
            wanted[name] = "encoder_hidden_states"
        else:
            report.skip(f"forward argument `{name}`", "no diffusers name fits what the reference feeds it")
    renames: dict[str, str] = {}
    for name, new in wanted.items():
        if new == name:
            continue
        if new in params:
            report.skip(f"{name} -> {new}", f"forward already has an argument `{new}`")
        elif new in renames.values():
            other = next(k for k, v in renames.items() if v == new)
            report.skip(f"{name} -> {new}", f"`{other}` is renamed to `{new}` already")
        else:
            renames[name] = new
    return renames


def _output_kind(target: Target, forward: cst.FunctionDef) -> tuple[str, int] | None:
    """("single", 1) or ("tuple", n) from the measured output paths; None when the output is
    something else (a dict, nested, already a dataclass)."""
    if target.output_paths:
        matches = [_OUTPUT_PATH.match(p) for p in target.output_paths]
        if not all(matches):
            return None
        if [mt.group(1) for mt in matches] == [None]:
            return "single", 1
        indices = [int(mt.group(2)) for mt in matches if mt.group(2) is not None]
        if len(indices) != len(matches) or indices != list(range(len(indices))):
            return None
        return "tuple", len(indices)
    values = [r.value for r in _returns(forward)]
    if values and all(isinstance(v, cst.Tuple) for v in values) and len({len(v.elements) for v in values}) == 1:
        return "tuple", len(values[0].elements)
    if values and not any(isinstance(v, cst.Tuple) for v in values):
        return "single", 1
    return None


class _Returns(cst.CSTVisitor):
    """Return statements of one function, not of functions or lambdas nested in it."""

    def __init__(self) -> None:
        self.found: list[cst.Return] = []
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return self.depth == 1

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Return(self, node: cst.Return) -> None:
        self.found.append(node)


def _returns(function: cst.FunctionDef) -> list[cst.Return]:
    visitor = _Returns()
    function.visit(visitor)
    return visitor.found


def output_class(target: Target) -> tuple[str, str]:
    """The existing diffusers dataclass for a single-tensor output: (name, import line). A UNet
    fed a conditioning sequence in this run gets UNet2DConditionModel's output."""
    tensors = [i for i in target.inputs if i.get("kind") == "randn"]
    rank = len(tensors[0]["shape"]) if tensors else 4
    conditioned = any(len(i.get("shape", [])) == 3 for i in tensors[1:])
    if target.family == "unets":
        key = ("unets", rank, conditioned) if rank == 4 else ("unets", rank)
        found = _OUTPUTS.get(key)
    else:
        found = _OUTPUTS.get(target.family) if target.family == "autoencoders" else None
    name, standalone, in_tree = found or _OUTPUTS["transformers"]
    return name, f"from {target.relative(in_tree) if target.in_tree else standalone} import {name}\n"


def _field_names(sites: list[cst.Return], n: int) -> list[str]:
    """`sample` first (diffusers' name for the prediction), then the variable each position
    returns when every return site returns the same name there, else output_<i>."""
    names = ["sample"]
    for i in range(1, n):
        seen = {code(r.value.elements[i].value) for r in sites if isinstance(r.value, cst.Tuple) and len(r.value.elements) == n}
        candidate = seen.pop() if len(seen) == 1 else ""
        ok = candidate.isidentifier() and candidate not in names and candidate not in {"self", "return_dict"}
        names.append(candidate if ok else f"output_{i}")
    return names


def _dataclass_source(name: str, class_name: str, fields: list[str]) -> str:
    docs = "\n".join(
        f"        {f} (`torch.Tensor`):\n            "
        + ("The model's prediction (the first output of the reference forward)." if i == 0 else f"Output {i} of the reference forward.")
        for i, f in enumerate(fields)
    )
    body = "\n".join(f"    {f}: torch.Tensor" for f in fields)
    return f'@dataclass\nclass {name}(BaseOutput):\n    """\n    The output of [`{class_name}`].\n\n    Args:\n{docs}\n    """\n\n{body}\n'


def _free_name(taken: set[str], *choices: str) -> str:
    for c in choices:
        if c not in taken:
            return c
    i = 1
    while f"output_{i}" in taken:
        i += 1
    return f"output_{i}"


class _WrapReturns(cst.CSTTransformer):
    """Every `return E` of the forward (not of nested functions) becomes
    `out = E; if not return_dict: return <tuple>; return Output(...)`, and a final if/else whose
    branches all end in a return assigns `out` in each branch and returns once after it."""

    def __init__(self, out: str, tail: list[cst.BaseStatement], originals: set[int]):
        self.out, self.tail, self.originals = out, tail, originals
        self.depth = 0
        self.unhandled = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return self.depth == 1

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.depth -= 1
        return updated

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_SimpleStatementSuite(self, original, updated):
        if any(id(s) in self.originals for s in original.body):
            self.unhandled += 1
        return updated

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        if self.depth != 1 or not original.body or id(original.body[-1]) not in self.originals:
            return updated
        ret = updated.body[-1]
        before = list(updated.body[:-1])
        lines: list[cst.BaseStatement] = []
        if before:
            lines.append(updated.with_changes(body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for s in before]))
        assign = cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(self.out))], ret.value or cst.Name("None"))],
                                         leading_lines=updated.leading_lines if not before else ())
        return cst.FlattenSentinel([*lines, assign, *self.tail])


def _assign_tail(stmt: cst.BaseStatement, out: str) -> cst.BaseStatement | None:
    """The final if/else with every branch ending in `return E`, with `out = E` instead; None
    when some branch does not end in a return."""
    if isinstance(stmt, cst.SimpleStatementLine) and stmt.body and isinstance(stmt.body[-1], cst.Return):
        ret = stmt.body[-1]
        return stmt.with_changes(body=[*stmt.body[:-1], cst.Assign([cst.AssignTarget(cst.Name(out))], ret.value or cst.Name("None"))])
    if isinstance(stmt, cst.If) and stmt.orelse is not None and isinstance(stmt.body, cst.IndentedBlock):
        last = _assign_tail(stmt.body.body[-1], out)
        if last is None:
            return None
        orelse = stmt.orelse
        if isinstance(orelse, cst.If):
            new_else = _assign_tail(orelse, out)
        elif isinstance(orelse.body, cst.IndentedBlock):
            tail = _assign_tail(orelse.body.body[-1], out)
            new_else = orelse.with_changes(body=orelse.body.with_changes(body=[*orelse.body.body[:-1], tail])) if tail else None
        else:
            new_else = None
        if new_else is None:
            return None
        return stmt.with_changes(body=stmt.body.with_changes(body=[*stmt.body.body[:-1], last]), orelse=new_else)
    return None


def _tail(out: str, output: str, single: bool, fields: list[str]) -> list[cst.BaseStatement]:
    if single:
        return [
            statement(f"if not return_dict:\n    return ({out},)\n"),
            statement(f"return {output}({fields[0]}={out})\n"),
        ]
    return [statement(f"if not return_dict:\n    return {out}\n"), statement(f"return {output}(*{out})\n")]


def _with_return_dict(fn: cst.FunctionDef) -> cst.FunctionDef:
    param = cst.Param(cst.Name("return_dict"), annotation=cst.Annotation(cst.Name("bool")), default=cst.Name("True"))
    params = fn.params
    if isinstance(params.star_arg, cst.Param):  # after *args, keyword-only
        return fn.with_changes(params=params.with_changes(kwonly_params=[*params.kwonly_params, param]))
    return fn.with_changes(params=params.with_changes(params=[*params.params, param]))


class _SelfCalls(cst.CSTTransformer):
    """Inside the model class: self.forward(...) / self(...) with the renamed keywords, asking for
    a tuple (return_dict=False) and, for a single output, taking its element."""

    def __init__(self, renames: dict[str, str], single: bool):
        self.renames, self.single = renames, single
        self.count = 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not m.matches(updated.func, m.Name("self") | m.Attribute(value=m.Name("self"), attr=m.Name("forward"))):
            return updated
        if any(a.keyword and a.keyword.value == "return_dict" for a in updated.args):
            return updated
        args = [a.with_changes(keyword=cst.Name(self.renames[a.keyword.value])) if a.keyword and a.keyword.value in self.renames else a
                for a in updated.args]
        args = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in args]
        args.append(cst.Arg(cst.Name("False"), keyword=cst.Name("return_dict"),
                            equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))))
        self.count += 1
        call = updated.with_changes(args=args)
        return cst.Subscript(call, [cst.SubscriptElement(cst.Index(cst.Integer("0")))]) if self.single else call


def _annotate(fn: cst.FunctionDef, renames: dict[str, str], torch_name: str | None) -> cst.FunctionDef:
    if torch_name is None:
        return fn

    def one(p: cst.Param) -> cst.Param:
        if p.name.value not in renames.values() or p.annotation is not None:
            return p
        text = FORWARD_NAMES[p.name.value].annotation.replace("torch.", f"{torch_name}.")
        if m.matches(p.default, m.Name("None")):
            text += " | None"
        return p.with_changes(annotation=cst.Annotation(cst.parse_expression(text)))

    return fn.with_changes(params=fn.params.with_changes(params=[one(p) for p in fn.params.params],
                                                         kwonly_params=[one(p) for p in fn.params.kwonly_params]))


def _forward_docstring(fn: cst.FunctionDef, target: Target, renames: dict[str, str], output: str, single: bool) -> cst.FunctionDef:
    old_doc = docstring_text(fn.body.body)
    _, docs = docstrings.parse(old_doc)
    back = {new: old for old, new in renames.items()}
    entries = []
    for p in [*fn.params.params[1:], *fn.params.kwonly_params]:
        name = p.name.value
        old = back.get(name, name)
        meaning = docs.get(old) or (FORWARD_NAMES[name].meaning if name in FORWARD_NAMES else f"The reference forward's `{old}`.")
        if name == "return_dict":
            meaning = f"Whether to return a [`{output}`] instead of a plain tuple."
        kind = code(p.annotation.annotation) if p.annotation else None
        has, value = docstrings.literal(p.default)
        entries.append(docstrings.entry(name, kind, repr(value) if has and value is not None else None,
                                        p.default is not None, meaning, "            "))
    returns = "Returns:\n" + textwrap.fill(
        f"[`{output}`] if `return_dict` is True, otherwise a `tuple` "
        + ("whose first element is the sample tensor." if single else "of the reference forward's outputs, in order."),
        width=100, initial_indent="    ", subsequent_indent="    ")
    text = docstrings.render(f"The [`{target.class_name}`] forward method.", "Args", entries, returns, indent="        ")
    body = list(fn.body.body)
    if old_doc is not None:
        body = body[1:]
    return fn.with_changes(body=fn.body.with_changes(body=[docstrings.docstring_statement(text), *body]))


# the order diffusers' forwards take these arguments in: transformers as SD3/Flux/PixArt/DiT, UNets
# as UNet2DModel/UNet2DConditionModel; the model's other arguments follow in their own order
_ORDER = {
    "transformers": ("hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "class_labels"),
    "unets": ("sample", "timestep", "encoder_hidden_states", "class_labels"),
}


def _in_diffusers_order(module: cst.Module, target: Target, report: GroupReport) -> cst.Module:
    """The forward's positional parameters with diffusers' names first, in diffusers' order.
    Parity and the usage example pass inputs by keyword, so only a positional caller could
    notice; a reorder that would put a required argument after an optional one is not done."""
    order = _ORDER.get(target.family)
    forward = method(top_class(module, target.class_name), "forward")
    if order is None or forward is None or not forward.params.params:
        return module
    first, rest = forward.params.params[0], list(forward.params.params[1:])
    known = sorted((p for p in rest if p.name.value in order), key=lambda p: order.index(p.name.value))
    wanted = known + [p for p in rest if p.name.value not in order]
    if [p.name.value for p in wanted] == [p.name.value for p in rest]:
        return module
    defaults = [p.default is not None for p in wanted]
    if defaults != sorted(defaults):
        report.skip("forward argument order", "diffusers' order would put a required argument after one with a default")
        return module
    positional = [c for c in m.findall(top_class(module, target.class_name), m.Call(func=m.Name("self") | m.Attribute(
        value=m.Name("self"), attr=m.Name("forward")))) if sum(1 for a in c.args if not a.keyword and not a.star) > 1]
    if positional:
        report.skip("forward argument order", f"the class calls its own forward positionally ({code(positional[0])[:60]})")
        return module
    wanted = [p.with_changes(comma=cst.MaybeSentinel.DEFAULT) if i == len(wanted) - 1 else p.with_changes(comma=c.comma)
              for i, (p, c) in enumerate(zip(wanted, rest, strict=True))]
    report.changed("forward arguments in diffusers' order: " + ", ".join(p.name.value for p in wanted))
    new = forward.with_changes(params=forward.params.with_changes(params=[first, *wanted]))
    return map_class(module, target.class_name, lambda c: c.with_changes(body=c.body.with_changes(body=[
        new if s is forward else s for s in c.body.body])))


def forward_conventions(module: cst.Module, target: Target) -> tuple[cst.Module, GroupReport]:
    """Rename the model's forward arguments, add return_dict and the output dataclass.
    report.data["forward_renames"] is {reference argument: diffusers argument}."""
    report = GroupReport("forward")
    cls = top_class(module, target.class_name)
    forward = method(cls, "forward") if cls else None
    if forward is None:
        report.skip("forward", f"no {target.class_name}.forward at the top level of the file")
        return module, report
    renames = plan_renames(forward, target, report)
    if renames:
        module, renames, refused = rename_locals(module, forward, renames)
        for old, why in refused.items():
            report.skip(f"forward argument `{old}`", why)
    for old, new in renames.items():
        report.changed(f"forward argument {old} -> {new}")
    report.data["forward_renames"] = dict(renames)
    module = _in_diffusers_order(module, target, report)

    forward = method(top_class(module, target.class_name), "forward")
    params = [p.name.value for p in [*forward.params.params, *forward.params.kwonly_params]]
    if "return_dict" in params:
        report.skip("return_dict", "forward already takes return_dict")
        return module, report
    kind = _output_kind(target, forward)
    sites = _returns(forward)
    if kind is None or not sites or any(r.value is None for r in sites):
        report.skip("return_dict and output dataclass", "the forward does not return a tensor or a flat tuple of them")
        return _rename_self_calls(module, target, renames, None), report
    single = kind[0] == "single"
    taken = names_in_function(module, forward)
    out = _free_name(taken, "output", "model_output")
    if single:
        output, import_line = output_class(target)
        fields = ["sample"]
    else:
        output = f"{target.class_name}Output"
        fields = _field_names(sites, kind[1])
        import_line = f"from {target.relative('...utils') if target.in_tree else 'diffusers.utils'} import BaseOutput\n"
    tail = _tail(out, output, single, fields)

    unhandled = 0

    def rewrite(fn: cst.FunctionDef) -> cst.FunctionDef:
        nonlocal unhandled
        originals = {id(r) for r in _returns(fn)}
        body = list(fn.body.body)
        merged = _assign_tail(body[-1], out) if isinstance(body[-1], cst.If) else None
        if merged is not None:
            fn = fn.with_changes(body=fn.body.with_changes(body=[*body[:-1], merged, *tail]))
        wrapper = _WrapReturns(out, tail, originals)
        fn = fn.visit(wrapper)
        unhandled = wrapper.unhandled
        fn = _with_return_dict(fn)
        torch_name = module_alias(module, "torch") or "torch"  # `import torch` is added below when missing
        fn = _annotate(fn, renames, torch_name)
        if fn.returns is None:
            fn = fn.with_changes(returns=cst.Annotation(cst.parse_expression(f"{output} | tuple")))
        return _forward_docstring(fn, target, renames, output, single)

    rewritten = map_class(module, target.class_name, lambda c: c.with_changes(body=c.body.with_changes(body=[
        rewrite(s) if isinstance(s, cst.FunctionDef) and s.name.value == "forward" else s for s in c.body.body
    ])))
    if unhandled:
        report.skip("return_dict and output dataclass", "a return sits on one line with its `if` (`if c: return x`)")
        return _rename_self_calls(module, target, renames, None), report
    module = rewritten
    if module_alias(module, "torch") is None:
        module = insert_after_imports(module, "import torch\n")
    module = insert_after_imports(module, import_line)
    if not single:
        module = insert_after_imports(module, "from dataclasses import dataclass\n")
        module = _before_class(module, target.class_name, _dataclass_source(output, target.class_name, fields))
        report.changed(f"tuple output -> {output}({', '.join(fields)})")
    report.changed(f"return_dict: bool = True; returns {output} (a tuple when return_dict=False)")
    report.data["output_class"] = output
    report.data["output_fields"] = fields
    return _rename_self_calls(module, target, renames, single), report


def _before_class(module: cst.Module, class_name: str, source: str) -> cst.Module:
    body = list(module.body)
    at = next(i for i, s in enumerate(body) if isinstance(s, cst.ClassDef) and s.name.value == class_name)
    new = list(cst.parse_module(source).body)
    new[0] = new[0].with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    return module.with_changes(body=[*body[:at], *new, *body[at:]])


def _rename_self_calls(module: cst.Module, target: Target, renames: dict[str, str], single: bool | None) -> cst.Module:
    """Other methods of the model calling its forward keep working: renamed keywords, and a
    tuple asked for when forward now returns a dataclass."""
    if single is None and not renames:
        return module

    def fix(cls: cst.ClassDef) -> cst.ClassDef:
        body = []
        for s in cls.body.body:
            if isinstance(s, cst.FunctionDef) and s.name.value != "forward":
                if single is None:
                    s = s.visit(_KeywordRenames(renames))
                else:
                    s = s.visit(_SelfCalls(renames, single))
            body.append(s)
        return cls.with_changes(body=cls.body.with_changes(body=body))

    return map_class(module, target.class_name, fix)


class _KeywordRenames(cst.CSTTransformer):
    def __init__(self, renames: dict[str, str]):
        self.renames = renames

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if not m.matches(updated.func, m.Name("self") | m.Attribute(value=m.Name("self"), attr=m.Name("forward"))):
            return updated
        return updated.with_changes(args=[
            a.with_changes(keyword=cst.Name(self.renames[a.keyword.value])) if a.keyword and a.keyword.value in self.renames else a
            for a in updated.args
        ])

