"""Model-class conventions: the class docstring with a `Parameters:` section from the
constructor, gradient checkpointing (diffusers' branch in the loops over repeated blocks, and
the flag, only where the branch exists), `_no_split_modules` (the repeated block classes) and
`_skip_layerwise_casting_patterns` (embedding and norm modules, matched against the built
model's module names)."""

from __future__ import annotations

import re
from typing import Any

import libcst as cst
import libcst.matchers as m

from agent.porting.config_capture import insert_after_imports
from agent.porting.conventions import docstrings
from agent.porting.conventions.cstutil import (
    code,
    docstring_index,
    map_class,
    method,
    module_alias,
    set_class_attributes,
    statement,
    top_class,
)
from agent.porting.conventions.report import GroupReport
from agent.porting.conventions.target import Target
from agent.porting.conventions.vocabulary import PER_HEAD, meaning

MODULE_LIST = m.Call(func=m.Name("ModuleList") | m.Attribute(attr=m.Name("ModuleList")))
_MODULATION = re.compile(r"adaln|ada_ln|modulation", re.IGNORECASE)


# -- the class docstring --------------------------------------------------------------------------

def class_docstring(cls: cst.ClassDef, target: Target, reference_docs: tuple[str, dict[str, str]], renames: dict[str, str],
                    per_head: dict[str, Any]) -> tuple[cst.ClassDef, int]:
    """The class with a diffusers-style docstring; returns (class, number of documented arguments
    whose description came from the reference)."""
    init = method(cls, "__init__")
    summary, docs = reference_docs
    back = {new: old for old, new in renames.items()}
    width = next(iter(per_head), None)
    noun = {"unets": "A UNet model", "autoencoders": "An autoencoder model"}.get(target.family, "A Transformer model")
    summary = summary or f"{noun} ported from the reference `{target.reference_class or target.class_name}`."
    entries, from_reference = [], 0
    for p in [*init.params.params[1:], *init.params.kwonly_params] if init else []:
        name = p.name.value
        old = back.get(name, name)
        if name == PER_HEAD and width:
            text = f"{meaning(PER_HEAD)} The reference's `{width}` is `{renames.get(per_head[width][1], per_head[width][1])} * {PER_HEAD}`."
        elif docs.get(old):
            text, from_reference = docs[old], from_reference + 1
            text = text[:1].upper() + text[1:]
        elif meaning(name):
            text = meaning(name)
        else:
            text = f"The reference's `{old}` argument (the reference code does not describe it)."
        has, default = docstrings.literal(p.default)
        kind = code(p.annotation.annotation) if p.annotation else docstrings.type_name(default) if has and default is not None else None
        if kind is None and target.config.get(name) is not None:
            kind = docstrings.type_name(target.config[name])
        entries.append(docstrings.entry(name, kind, repr(default) if has else None, has and default is None, text, "        "))
    text = docstrings.render(summary, "Parameters", entries)
    body = list(cls.body.body)
    if docstring_index(body):
        body = body[1:]
    return cls.with_changes(body=cls.body.with_changes(body=[docstrings.docstring_statement(text), *body])), from_reference


# -- repeated blocks -------------------------------------------------------------------------------

def module_lists(init: cst.FunctionDef) -> dict[str, set[str] | None]:
    """self.<attr> = nn.ModuleList(...) in __init__: attr -> the classes of its elements (None
    when some element is not a direct constructor call we can read)."""
    found: dict[str, set[str] | None] = {}

    class Visit(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if len(node.targets) == 1 and m.matches(node.targets[0].target, m.Attribute(value=m.Name("self"))) and m.matches(node.value, MODULE_LIST):
                attr = node.targets[0].target.attr.value
                found[attr] = _element_classes(node.value.args[0].value) if node.value.args else set()

        def visit_Call(self, node: cst.Call) -> None:
            if m.matches(node.func, m.Attribute(value=m.Attribute(value=m.Name("self")), attr=m.Name("append"))) and node.args:
                attr = node.func.value.attr.value
                if attr in found and found[attr] is not None:
                    classes = _element_classes(cst.List([cst.Element(node.args[0].value)]))
                    found[attr] = None if classes is None else found[attr] | classes

    init.visit(Visit())
    return found


def _element_classes(value: cst.BaseExpression) -> set[str] | None:
    elts: list[cst.BaseExpression]
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        elts = [value.elt]
    elif isinstance(value, (cst.List, cst.Tuple)):
        elts = [e.value for e in value.elements]
    else:
        return None
    names = set()
    for e in elts:
        if isinstance(e, cst.Call) and isinstance(e.func, cst.Name):
            names.add(e.func.value)
        else:
            return None
    return names


def _loop_target(node: cst.For) -> tuple[str, str] | None:
    """(module-list attribute, loop variable) for `for b in self.x:` / `for i, b in enumerate(self.x):`."""
    if m.matches(node.iter, m.Attribute(value=m.Name("self"))) and isinstance(node.target, cst.Name):
        return node.iter.attr.value, node.target.value
    if (m.matches(node.iter, m.Call(func=m.Name("enumerate"), args=[m.Arg(m.Attribute(value=m.Name("self")))]))
            and m.matches(node.target, m.Tuple(elements=[m.Element(), m.Element(m.Name())]))):
        return node.iter.args[0].value.attr.value, node.target.elements[1].value.value
    return None


def _positional(call: cst.Call, block_forward: cst.FunctionDef | None) -> list[cst.BaseExpression] | None:
    """The call's arguments as positional ones (keywords placed by the block's forward signature,
    skipped parameters filled with their defaults); None when that is not possible."""
    if any(a.star for a in call.args):
        return None
    positional = [a.value for a in call.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
    if not keywords:
        return positional
    if block_forward is None:
        return None
    params = block_forward.params.params[1:]
    if any(k not in {p.name.value for p in params} for k in keywords):
        return None
    last = max(i for i, p in enumerate(params) if p.name.value in keywords)
    out = list(positional)
    for p in params[len(positional): last + 1]:
        if p.name.value in keywords:
            out.append(keywords[p.name.value])
        elif p.default is not None:
            out.append(p.default)
        else:
            return None
    return out


class _Checkpointing(cst.CSTTransformer):
    """`y = block(args)` in loops over the model's module lists -> diffusers' branch."""

    def __init__(self, lists: dict[str, set[str] | None], block_forwards: dict[str, cst.FunctionDef], torch_name: str):
        self.lists, self.block_forwards, self.torch = lists, block_forwards, torch_name
        self.wrapped: dict[str, int] = {}
        self.refused: list[tuple[str, str]] = []

    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For:
        target = _loop_target(original)
        if target is None or target[0] not in self.lists:
            return updated
        attr, var = target
        classes = self.lists[attr]
        block_forward = self.block_forwards.get(next(iter(classes))) if classes and len(classes) == 1 else None
        body = []
        for stmt in updated.body.body:
            call = _block_call(stmt, var)
            if call is None:
                body.append(stmt)
                continue
            args = _positional(call, block_forward)
            if args is None:
                self.refused.append((f"self.{attr} loop", "a block call with keyword or star arguments that cannot be made positional"))
                body.append(stmt)
                continue
            targets, value = code(stmt.body[0].targets[0].target), stmt.body[0].value
            argsrc = ", ".join(code(a) for a in args)
            checkpointed = cst.parse_expression(f"self._gradient_checkpointing_func({var}, {argsrc})")
            branch = (f"if {self.torch}.is_grad_enabled() and self.gradient_checkpointing:\n"
                      f"    {targets} = {code(checkpointed if value is call else value.deep_replace(call, checkpointed))}\n"
                      f"else:\n    {targets} = {code(value)}\n")
            body.append(statement(branch).with_changes(leading_lines=stmt.leading_lines))
            self.wrapped[attr] = self.wrapped.get(attr, 0) + 1
        return updated.with_changes(body=updated.body.with_changes(body=body))


def _block_call(stmt: cst.BaseStatement, var: str) -> cst.Call | None:
    """The block call of `y = block(...)`, or of `y = block(...)[i]` (a block whose outputs the
    port reorders or picks from: the blocks stage's glue for a diffusers block)."""
    call = m.Call(func=m.Name(var))
    if m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget()], value=call | m.Subscript(value=call))])):
        value = stmt.body[0].value
        return value if isinstance(value, cst.Call) else value.value
    return None


def _set_flag_in_init(init: cst.FunctionDef) -> cst.FunctionDef:
    """self.gradient_checkpointing = False right after super().__init__()."""
    body = list(init.body.body)
    line = statement("self.gradient_checkpointing = False\n")
    at = next((i + 1 for i, s in enumerate(body) if m.matches(s, m.SimpleStatementLine(body=[m.Expr(m.Call(func=m.Attribute(
        value=m.Call(func=m.Name("super")), attr=m.Name("__init__"))))]))), docstring_index(body))
    return init.with_changes(body=init.body.with_changes(body=[*body[:at], line, *body[at:]]))


# -- layerwise casting -----------------------------------------------------------------------------

def skip_casting_patterns(modules: list[dict[str, Any]]) -> list[str]:
    """Patterns (re.search on module names, as diffusers applies them) keeping embeddings and
    norm-like modules (norms, adaptive-norm modulation) in full precision: only those that hold
    a castable layer (Linear, Conv, Embedding), since nothing else is cast."""
    names = [mod["name"] for mod in modules]
    castable = [mod["name"] for mod in modules if mod.get("castable")]

    def holds_castable(prefix: str) -> bool:
        return any(c == prefix or c.startswith(prefix + ".") for c in castable)

    patterns = [n for n in names if n and "." not in n and "emb" in n.lower() and holds_castable(n)]  # embeddings
    if any(re.search("norm", n) and holds_castable(n) for n in names):
        patterns.append("norm")
    for part in sorted({p for n in names for p in n.split(".") if _MODULATION.search(p)}):
        if any(n.split(".")[-1] == part and holds_castable(n) for n in names):
            patterns.append(part)  # adaptive-norm modulation (diffusers keeps it inside its norm modules)
    return list(dict.fromkeys(patterns))


def _imported_from_diffusers(module: cst.Module) -> dict[str, str]:
    """Local name -> class name of what the file imports from diffusers (`from diffusers.models...
    import X`, or the relative in-tree form): blocks the blocks stage substituted live there."""
    names = {}
    for stmt in module.body:
        for small in getattr(stmt, "body", ()) if isinstance(stmt, cst.SimpleStatementLine) else ():
            if not isinstance(small, cst.ImportFrom) or isinstance(small.names, cst.ImportStar):
                continue
            source = cst.helpers.get_full_name_for_node(small.module) if small.module else ""
            if small.relative or source == "diffusers" or source.startswith("diffusers."):
                names.update({a.evaluated_alias or a.name.value: a.name.value for a in small.names})
    return names


# -- the group ---------------------------------------------------------------------------------------

def model_class_conventions(module: cst.Module, target: Target, reference_docs: tuple[str, dict[str, str]],
                            config_renames: dict[str, str], per_head: dict[str, Any],
                            without_checkpointing: str | None = None) -> tuple[cst.Module, GroupReport]:
    """Docstring, gradient checkpointing, _no_split_modules, _skip_layerwise_casting_patterns.
    `reference_docs` is docstrings.argument_docs() of the class before any renames;
    `without_checkpointing` (a reason) leaves gradient checkpointing out."""
    report = GroupReport("model class")
    cls = top_class(module, target.class_name)
    if cls is None:
        report.skip("model class", f"no {target.class_name} at the top level of the file")
        return module, report
    init, forward = method(cls, "__init__"), method(cls, "forward")
    attributes: dict[str, str] = {}
    lists = module_lists(init) if init else {}
    looped = [t[0] for t in (_loop_target(n) for n in _fors(forward)) if t and t[0] in lists] if forward else []
    block_classes = sorted({c for attr in looped for c in (lists[attr] or ())})
    defined = {s.name.value: s for s in module.body if isinstance(s, cst.ClassDef)}

    if without_checkpointing:
        report.skip("gradient checkpointing", without_checkpointing)
    elif forward is not None:
        torch_name = module_alias(module, "torch")
        if torch_name is None:
            module, torch_name = insert_after_imports(module, "import torch\n"), "torch"
        forwards = {n: method(c, "forward") for n, c in defined.items() if method(c, "forward")}
        mod = _Checkpointing(lists, forwards, torch_name)
        new_forward = forward.visit(mod)
        for what, why in mod.refused:
            report.skip(f"gradient checkpointing in the {what}", why)
        if mod.wrapped:
            module = map_class(module, target.class_name, lambda c: c.with_changes(body=c.body.with_changes(body=[
                new_forward if s is forward else _set_flag_in_init(s) if s is init else s for s in c.body.body
            ])))
            attributes["_supports_gradient_checkpointing"] = "True"
            report.changed("gradient checkpointing: " + ", ".join(f"{n} block call(s) in the loop over self.{a}" for a, n in mod.wrapped.items()))
            report.data["checkpointed_loops"] = mod.wrapped
        else:
            report.skip("gradient checkpointing", "forward has no loop calling the blocks of a module list")

    diffusers_blocks = _imported_from_diffusers(module)  # local name -> the class's own name, which accelerate matches
    local_blocks = [c if c in defined else diffusers_blocks[c] for c in block_classes if c in defined or c in diffusers_blocks]
    if local_blocks:
        attributes["_no_split_modules"] = repr(local_blocks)
        report.changed(f"_no_split_modules = {local_blocks!r}")
    else:
        report.skip("_no_split_modules", "no loop over a module list of blocks defined in this file or imported from diffusers")
    if target.modules:
        patterns = skip_casting_patterns(target.modules)
        if patterns:
            attributes["_skip_layerwise_casting_patterns"] = repr(patterns)
            report.changed(f"_skip_layerwise_casting_patterns = {patterns!r}")
        else:
            report.skip("_skip_layerwise_casting_patterns", "no embedding or norm module holds a layer that layerwise casting would cast")
    else:
        report.skip("_skip_layerwise_casting_patterns", "the built model's module names are unknown")
    report.data["flags"] = {k: v for k, v in attributes.items()}

    cls = top_class(module, target.class_name)
    cls, documented = class_docstring(cls, target, reference_docs, config_renames, per_head)
    n_args = len(method(cls, "__init__").params.params) - 1 if method(cls, "__init__") else 0
    report.changed(f"class docstring with Parameters: for {n_args} arguments ({documented} described by the reference)")
    cls = set_class_attributes(cls, attributes)
    module = map_class(module, target.class_name, lambda c: cls)
    return module, report


def _fors(function: cst.FunctionDef) -> list[cst.For]:
    found: list[cst.For] = []

    class Visit(cst.CSTVisitor):
        def visit_For(self, node: cst.For) -> None:
            found.append(node)

    function.visit(Visit())
    return found
