"""Rewrite a ported model file so proven diffusers blocks replace reference classes and functions.

For each class plan: every instantiation of the reference class becomes the block's constructor
(its dims written as expressions over the arguments of that instantiation), extra modules the
block needs (a `Timesteps` beside a `TimestepEmbedding`, the projection after an adaptive norm)
are assigned next to it, and the call sites `self.<attr>(...)` are adapted with the family's
glue. For each function plan, its calls are rewritten. Then the reference definitions nothing
uses any more are removed (with the helpers only they used), the imports from diffusers are added
(relative inside a diffusers checkout; aliased where a remaining name would collide) and unused
imports are dropped. A plan that cannot be written everywhere it is needed is left out, with the
reason; the others still apply. No numerics are decided here: that was the proof, and full-model
parity checks the result.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from agent.porting.blocks.base import BlockCode
from agent.porting.codemods import drop_unused_imports

ATOMS = (cst.Name, cst.Attribute, cst.Integer, cst.Float, cst.SimpleString, cst.Call, cst.Subscript)
NEUTRAL = {"None", "False", "0"}  # an option left off, as the proof saw it
PURE_CALLS = {"int", "float", "len", "min", "max", "round", "tuple", "list", "bool"}


@dataclass
class ClassPlan:
    name: str  # the reference class, as the port names it
    code: BlockCode
    exprs: dict[str, str]  # dim -> template over the constructor's parameters ("{dim} // {num_heads}") or a literal
    init_params: list[dict[str, Any]] = field(default_factory=list)  # when the port's class has no __init__ of its own
    frozen: dict[str, Any] = field(default_factory=dict)  # constructor arguments the block does not take: the values proven
    container: tuple[str, str] | None = None  # (owner class, attribute): the block replaces the nn.Sequential assigned there


@dataclass
class FunctionPlan:
    name: str
    code: BlockCode
    roles: dict[str, str]  # role in the template -> the reference parameter that plays it
    ignore: tuple[str, ...] = ()


@dataclass
class Outcome:
    code: str
    applied: list[str]
    failed: dict[str, str]
    removed: list[str]
    definitions: list[str]
    imports: list[str]


@dataclass
class Param:
    name: str
    kind: str  # "positional", "keyword", "star", "starstar"
    default: str | None


def _src(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def params_of(fn: cst.FunctionDef, skip_first: bool = True) -> list[Param]:
    p = fn.params
    positional = [*p.posonly_params, *p.params]
    out = [Param(x.name.value, "positional", _src(x.default) if x.default else None) for x in positional]
    if skip_first and out:
        out = out[1:]
    if isinstance(p.star_arg, cst.Param):
        out.append(Param(p.star_arg.name.value, "star", None))
    out += [Param(x.name.value, "keyword", _src(x.default) if x.default else None) for x in p.kwonly_params]
    if p.star_kwarg:
        out.append(Param(p.star_kwarg.name.value, "starstar", None))
    return out


def params_from_record(record: list[dict[str, Any]]) -> list[Param]:
    """Constructor parameters the sandbox read from an inherited __init__ (defaults as literals)."""
    kinds = {"POSITIONAL_ONLY": "positional", "POSITIONAL_OR_KEYWORD": "positional", "KEYWORD_ONLY": "keyword",
             "VAR_POSITIONAL": "star", "VAR_KEYWORD": "starstar"}
    out = []
    for p in record:
        default = p.get("default", ...)
        literal = None if default is ... or isinstance(default, dict) else repr(tuple(default) if isinstance(default, list) else default)
        out.append(Param(str(p["name"]), kinds.get(str(p.get("kind")), "positional"), literal))
    return out


def bind(params: list[Param], call: cst.Call) -> dict[str, str] | str:
    """Each parameter's source at this call (defaults filled in), or why the call cannot be bound."""
    positional = [p for p in params if p.kind == "positional"]
    by_name = {p.name: p for p in params if p.kind in ("positional", "keyword")}
    out: dict[str, str] = {}
    i = 0
    for arg in call.args:
        if arg.star:
            return "called with *args / **kwargs"
        if arg.keyword is None:
            if i >= len(positional):
                return "called with more positional arguments than it declares"
            out[positional[i].name] = _src(arg.value)
            i += 1
        else:
            name = arg.keyword.value
            if name not in by_name or name in out:
                return f"called with an argument {name!r} it does not declare by name"
            out[name] = _src(arg.value)
    for p in params:
        if p.kind in ("star", "starstar"):
            continue
        if p.name not in out:
            if p.default is None:
                return f"argument {p.name!r} is not given"
            out[p.name] = p.default
    return out


def _atomic(source: str) -> bool:
    try:
        return isinstance(cst.parse_expression(source), ATOMS)
    except cst.ParserSyntaxError:
        return False


def _pure(source: str) -> bool:
    """An expression that may be evaluated twice: no calls but to a few pure builtins."""
    try:
        node = cst.parse_expression(source)
    except cst.ParserSyntaxError:
        return False
    calls: list[cst.Call] = []

    class Collect(cst.CSTVisitor):
        def visit_Call(self, n: cst.Call) -> None:
            calls.append(n)

    node.visit(Collect())
    return all(isinstance(c.func, cst.Name) and c.func.value in PURE_CALLS for c in calls)


PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(template: str, bound: dict[str, str]) -> str | None:
    """A dim's expression at one instantiation: `{param}` replaced by that argument's source,
    parenthesised when the template is more than the bare parameter."""
    names = PLACEHOLDER.findall(template)
    if any(n not in bound for n in names):
        return None
    bare = template.strip() == "{" + (names[0] if names else "") + "}"
    return PLACEHOLDER.sub(lambda m: bound[m.group(1)] if bare or _atomic(bound[m.group(1)]) else f"({bound[m.group(1)]})", template)


def _literal(source: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return False, None


def tidy(text: str, defaults: tuple[tuple[str, str], ...] = ()) -> str:
    """A rendered constructor without what a literal made moot: `a if True else b` -> `a`, and
    keyword arguments that render to the block's own default."""
    node = cst.parse_expression(text)

    class Fold(cst.CSTTransformer):
        def leave_IfExp(self, original, updated):
            known, value = _literal(_src(updated.test))
            return (updated.body if value else updated.orelse) if known else updated

    node = node.visit(Fold())
    if defaults and isinstance(node, cst.Call):
        drop = dict(defaults)
        args = [a for a in node.args if not (a.keyword and a.keyword.value in drop and _literal(_src(a.value)) == _literal(drop[a.keyword.value]))]
        if args != list(node.args):
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            node = node.with_changes(args=args)
    return _src(node)


def _self_attr(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


def _aliased(text: str, aliases: dict[str, str]) -> str:
    for name, alias in aliases.items():
        text = re.sub(rf"(?<![\w.]){re.escape(name)}(?=\()", alias, text)
    return text


class _Scan(cst.CSTVisitor):
    """What one plan touches: instantiation sites and their context, call sites, other uses."""

    def __init__(self, name: str, bases_of: dict[str, list[str]]):
        self.name = name
        self.dispatch_names = {name, *bases_of.get(name, [])}
        self.classes: list[str] = []
        self.assigns: list[cst.Assign] = []
        self.sites: list[tuple[cst.Call, str | None, str | None, bool]] = []  # (call, enclosing top class, self attribute, in a container)
        self.loops: list[tuple[str, str]] = []  # (container attribute, loop variable) of the enclosing `for` loops
        self.iterated: dict[tuple[str, str], int] = {}  # (class, attribute) -> `for` loops over it
        self.loop_calls: dict[tuple[str, str], int] = {}  # (class, attribute) -> calls of a loop variable over it
        self.loop_other: dict[tuple[str, str], int] = {}  # (class, attribute) -> other uses of such a loop variable
        self.loop_funcs: set[int] = set()
        self.loop_targets: set[int] = set()
        self.calls_as_func: set[int] = set()
        self.other_uses: list[str] = []
        self.dispatch: list[str] = []
        self.attr_uses: dict[tuple[str, str], list[cst.Attribute]] = {}
        self.attr_calls: dict[tuple[str, str], int] = {}
        self.attr_assigned: dict[tuple[str, str], int] = {}
        self.class_attrs: dict[str, set[str]] = {}
        self.function: list[str] = []
        self.callable_uses: set[int] = set()  # the name as a value in a table or an alias: still used as a callable
        self.table_uses: list[str] = []
        self.siblings: set[str] = set()  # other names in the same tables (classes the same code may build instead)

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        if not self.classes and node.name.value == self.name:
            return False  # the reference class's own body does not count
        self.classes.append(node.name.value)
        return True

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        if self.classes and self.classes[-1] == node.name.value:
            self.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.function.append(node.name.value)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.function.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        self.assigns.append(node)
        if isinstance(node.value, cst.Name) and node.value.value == self.name:
            self.callable_uses.add(id(node.value))
        if len(node.targets) == 1 and self.classes:
            attr = _self_attr(node.targets[0].target)
            if attr:
                key = (self.classes[0], attr)
                self.attr_assigned[key] = self.attr_assigned.get(key, 0) + 1

    def leave_Assign(self, node: cst.Assign) -> None:
        self.assigns.pop()

    def visit_For(self, node: cst.For) -> None:
        target = _loop_over_attr(node)
        if target and self.classes:
            self.iterated[(self.classes[0], target[0])] = self.iterated.get((self.classes[0], target[0]), 0) + 1
        self.loop_targets.update(id(n) for n in _names(node.target))
        self.loops.append(target or ("", ""))

    def leave_For(self, node: cst.For) -> None:
        self.loops.pop()

    def _loop_attr(self, name: str) -> str | None:
        """The container attribute the innermost loop binding `name` iterates over."""
        for attr, var in reversed(self.loops):
            if var == name:
                return attr or None
        return None

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) and func.value == self.name:
            self.calls_as_func.add(id(func))
            attr, container = None, False
            a = self.assigns[-1] if self.assigns else None
            if a is not None and len(a.targets) == 1:
                if a.value is node:
                    attr = _self_attr(a.targets[0].target)
                elif _sole_member(a.value, node, self.name):
                    attr, container = _self_attr(a.targets[0].target), True
            self.sites.append((node, self.classes[0] if self.classes else None, attr, container))
        if isinstance(func, cst.Name) and self.classes:
            loop_attr = self._loop_attr(func.value)
            if loop_attr:
                self.loop_funcs.add(id(func))
                key = (self.classes[0], loop_attr)
                self.loop_calls[key] = self.loop_calls.get(key, 0) + 1
        if isinstance(func, cst.Name) and func.value in ("isinstance", "issubclass") and len(node.args) == 2:
            found = [n for n in _names(node.args[1].value) if n.value in self.dispatch_names]
            if found:
                where = ".".join([*self.classes[:1], *self.function[-1:]]) or "module level"
                self.dispatch.append(f"{func.value}(..., {', '.join(sorted({n.value for n in found}))}) in {where}")
                self.calls_as_func.update(id(n) for n in found)  # rewritten below, not an other use
        attr = _self_attr(func)
        if attr and self.classes:
            key = (self.classes[0], attr)
            self.attr_calls[key] = self.attr_calls.get(key, 0) + 1

    def visit_Attribute(self, node: cst.Attribute) -> None:
        attr = _self_attr(node)
        if attr and self.classes:
            self.class_attrs.setdefault(self.classes[0], set()).add(attr)
            self.attr_uses.setdefault((self.classes[0], attr), []).append(node)

    def _table(self, values: list[cst.BaseExpression]) -> None:
        names = [v.value for v in values if isinstance(v, cst.Name)]
        if self.name in names:
            self.callable_uses.update(id(v) for v in values if isinstance(v, cst.Name) and v.value == self.name)
            self.siblings.update(n for n in names if n != self.name)

    def visit_Dict(self, node: cst.Dict) -> None:
        self._table([e.value for e in node.elements if isinstance(e, cst.DictElement)])

    def visit_List(self, node: cst.List) -> None:
        self._table([e.value for e in node.elements if isinstance(e, cst.Element)])

    def visit_Tuple(self, node: cst.Tuple) -> None:
        self._table([e.value for e in node.elements if isinstance(e, cst.Element)])

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name and id(node) not in self.calls_as_func:
            where = ".".join(self.classes[:1] + self.function[-1:]) or "module level"
            (self.table_uses if id(node) in self.callable_uses else self.other_uses).append(where)
        if self.classes and id(node) not in self.loop_funcs and id(node) not in self.loop_targets:
            loop_attr = self._loop_attr(node.value)
            if loop_attr:
                key = (self.classes[0], loop_attr)
                self.loop_other[key] = self.loop_other.get(key, 0) + 1


def _loop_over_attr(node: cst.For) -> tuple[str, str] | None:
    """(attribute, loop variable) for `for v in self.x:` and `for i, v in enumerate(self.x):`."""
    it, target = node.iter, node.target
    if isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "enumerate" and len(it.args) == 1:
        if isinstance(target, cst.Tuple) and len(target.elements) == 2 and isinstance(target.elements[1].value, cst.Name):
            it, target = it.args[0].value, target.elements[1].value
    attr = _self_attr(it)
    return (attr, target.value) if attr and isinstance(target, cst.Name) else None


def _sole_member(value: cst.BaseExpression, call: cst.Call, name: str) -> bool:
    """`value` is `nn.ModuleList([Name(...) for ...])` (or a list of `Name(...)` calls only)
    with `call` among its members: a container holding instances of one class."""
    if not (isinstance(value, cst.Call) and len(value.args) == 1 and not value.args[0].keyword):
        return False
    func = value.func
    if not ((isinstance(func, cst.Attribute) and func.attr.value == "ModuleList") or (isinstance(func, cst.Name) and func.value == "ModuleList")):
        return False
    inner = value.args[0].value
    if isinstance(inner, cst.ListComp):
        return inner.elt is call
    if isinstance(inner, cst.List):
        members = [e.value for e in inner.elements]
        return any(m is call for m in members) and all(isinstance(m, cst.Call) and isinstance(m.func, cst.Name) and m.func.value == name for m in members)
    return False


def _names(node: cst.CSTNode) -> list[cst.Name]:
    found: list[cst.Name] = []

    class Collect(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.append(n)

    node.visit(Collect())
    return found


def _format(plan: ClassPlan, template: str, bound: dict[str, str], names: dict[str, str], aliases: dict[str, str]) -> str | None:
    """A constructor template with each dim rendered over the arguments `bound` (None when one cannot be)."""
    values = {}
    for dim, expr in plan.exprs.items():
        if "{" + dim + "}" in template:
            rendered = render(expr, bound)
            if rendered is None:
                return None
            values[dim] = rendered
    return tidy(_aliased(template, aliases).format(**values, **names), plan.code.defaults)


class _RewriteClass(cst.CSTTransformer):
    """Apply one class plan whose sites `_Scan` found rewritable."""

    def __init__(self, plan: ClassPlan, ctor: list[Param], forward: list[Param] | None, attrs: dict[tuple[str, str], dict[str, str]],
                 names: dict[str, str], aliases: dict[str, str], containers: set[tuple[str, str]] = frozenset(),
                 glue_calls: set[int] = frozenset(), call: str | None = None):
        self.plan, self.ctor, self.forward = plan, ctor, forward
        self.attrs = attrs  # (class, attribute) -> slot -> attribute name
        self.containers = containers  # (class, attribute) of module lists holding the instances, called through loops
        self.glue_calls = glue_calls  # id() of call nodes found through the traced module tree (no slots)
        self.positional = call is not None  # the glue written positionally (see _positional_call)
        self.call = call if call is not None else plan.code.call
        self.names, self.aliases = names, aliases
        self.classes: list[str] = []
        self.loops: list[tuple[str, str]] = []
        self.slot_lines: dict[int, list[str]] = {}  # id(original statement line) -> slot assignments
        self.error: str | None = None

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        if not self.classes and node.name.value == self.plan.name:
            return False
        self.classes.append(node.name.value)
        return True

    def leave_ClassDef(self, original, updated):
        if self.classes and self.classes[-1] == original.name.value:
            self.classes.pop()
        return updated

    def visit_For(self, node: cst.For) -> None:
        self.loops.append(_loop_over_attr(node) or ("", ""))

    def leave_For(self, original, updated):
        self.loops.pop()
        return updated

    def _loop_attr(self, name: str) -> str | None:
        for attr, var in reversed(self.loops):
            if var == name:
                return attr or None
        return None

    def _glue(self, call: cst.Call, callee: str, slots: dict[str, str] | None = None) -> cst.BaseExpression | None:
        """The family's call-site glue at one call of the replaced module (`callee`); None (and
        self.error) when it cannot be written."""
        bound = bind(self.forward or [], call)
        if isinstance(bound, str):
            self.error = f"call site {callee}(...): {bound}"
            return None
        params = [p for p in self.forward or [] if p.kind in ("positional", "keyword")]
        args = [bound[p.name] for p in params]
        if self.positional:  # trailing arguments left at a None default are left out
            used = max([int(i) for i in PLACEHOLDER.findall(self.call) if i.isdigit()], default=0)
            while used > 0 and args[used] == "None" and params[used].default == "None":
                used -= 1
            text = self.call.split("(", 1)[0] + "(" + ", ".join("{" + str(i) + "}" for i in range(used + 1)) + ")"
            return cst.parse_expression(text.format(*args, self=callee))
        template = self.call or ""
        for i, arg in enumerate(args):
            if template.count("{" + str(i) + "}") > 1 and not _pure(arg):
                self.error = f"call site {callee}(...): its argument {arg} would be evaluated twice"
                return None
            if re.search(r"\{" + str(i) + r"\}[\[.]", template) and not _atomic(arg):
                args[i] = f"({arg})"
        if slots is None:
            slots = {s: f"self.{a}" for s, a in self.attrs.get(self._key(callee), {}).items()}
        return cst.parse_expression(template.format(*args, self=callee, **slots, **self.names))

    def _format(self, template: str, bound: dict[str, str]) -> str | None:
        return _format(self.plan, template, bound, self.names, self.aliases)

    def _key(self, callee: str) -> tuple[str, str] | None:
        return (self.classes[0], callee.removeprefix("self.")) if self.classes and callee.startswith("self.") else None

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = original.func
        if isinstance(func, cst.Name) and func.value == self.plan.name:
            bound = bind(self.ctor, updated)
            text = None if isinstance(bound, str) else self._format(self.plan.code.main, bound)
            if text is None:
                self.error = bound if isinstance(bound, str) else "a setting cannot be written from its arguments"
                return updated
            return cst.parse_expression(text)
        if id(original) in self.glue_calls:
            return self._glue(updated, _src(original.func)) or updated
        attr = _self_attr(func)
        key = (self.classes[0], attr) if attr and self.classes else None
        if key in self.attrs and self.plan.code.call:
            return self._glue(updated, f"self.{attr}", {s: f"self.{a}" for s, a in self.attrs[key].items()}) or updated
        loop_attr = self._loop_attr(func.value) if isinstance(func, cst.Name) and self.classes else None
        if loop_attr and (self.classes[0], loop_attr) in self.containers and self.call:
            return self._glue(updated, func.value, {}) or updated
        return updated

    def leave_SimpleStatementLine(self, original, updated):
        if len(original.body) != 1 or not isinstance(original.body[0], cst.Assign):
            return updated
        assign = original.body[0]
        attr = _self_attr(assign.targets[0].target) if len(assign.targets) == 1 else None
        value = assign.value
        if not (attr and self.classes and isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == self.plan.name):
            return updated
        slots = self.attrs.get((self.classes[0], attr), {})
        if not slots:
            return updated
        bound = bind(self.ctor, value)
        lines = [updated]
        for slot, template in self.plan.code.slots:
            text = None if isinstance(bound, str) else self._format(template, bound)
            if text is None:
                self.error = "a setting of an extra module cannot be written from its arguments"
                return updated
            lines.append(cst.parse_statement(f"self.{slots[slot]} = {text}\n"))
        return cst.FlattenSentinel(lines)


class _RewriteFunction(cst.CSTTransformer):
    def __init__(self, plan: FunctionPlan, params: list[Param], aliases: dict[str, str], strip: set[tuple[str, str]]):
        self.plan, self.params, self.aliases = plan, params, aliases
        self.strip = strip  # (function, variable): uses of torch.from_numpy(variable) become the variable
        self.functions: list[str] = []
        self.error: str | None = None

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if not self.functions and node.name.value == self.plan.name:
            return False
        self.functions.append(node.name.value)
        return True

    def leave_FunctionDef(self, original, updated):
        if self.functions and self.functions[-1] == original.name.value:
            self.functions.pop()
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = original.func
        if isinstance(func, cst.Name) and func.value == self.plan.name:
            bound = bind(self.params, updated)
            if isinstance(bound, str):
                self.error = bound
                return updated
            given = {a.keyword.value: _src(a.value) for a in original.args if a.keyword} | {p.name: _src(a.value) for p, a in zip(
                [p for p in self.params if p.kind == "positional"], [a for a in original.args if a.keyword is None], strict=False)}
            passed = sorted(p for p in self.plan.ignore if p in given and given[p] not in NEUTRAL)
            if passed:
                self.error = f"a call passes {', '.join(passed)}, which the block has no option for"
                return updated
            text = _aliased(self.plan.code.main, self.aliases).format(**{role: bound[p] for role, p in self.plan.roles.items()})
            if self.plan.code.numpy_to_torch and not self.strip:
                text += ".numpy()"
            return cst.parse_expression(text)
        if (self.plan.code.numpy_to_torch and self.functions and _is_from_numpy(original)
                and (self.functions[-1], original.args[0].value.value) in self.strip):
            return updated.args[0].value
        return updated


def _is_from_numpy(call: cst.Call) -> bool:
    f = call.func
    return (isinstance(f, cst.Attribute) and f.attr.value == "from_numpy" and isinstance(f.value, cst.Name) and f.value.value in ("torch", "th")
            and len(call.args) == 1 and isinstance(call.args[0].value, cst.Name))


class _NumpyUses(cst.CSTVisitor):
    """For each function: the variables assigned a call to `name`, and whether every later use of
    them is `torch.from_numpy(variable)`."""

    def __init__(self, name: str):
        self.name = name
        self.functions: list[str] = []
        self.assigned: dict[tuple[str, str], int] = {}
        self.loads: dict[tuple[str, str], int] = {}
        self.wrapped: dict[tuple[str, str], int] = {}
        self.bare_calls = 0

    def visit_FunctionDef(self, node) -> None:
        self.functions.append(node.name.value)

    def leave_FunctionDef(self, node) -> None:
        self.functions.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        v = node.value
        if isinstance(v, cst.Call) and isinstance(v.func, cst.Name) and v.func.value == self.name and self.functions:
            if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                key = (self.functions[-1], node.targets[0].target.value)
                self.assigned[key] = self.assigned.get(key, 0) + 1
            else:
                self.bare_calls += 1

    def visit_Call(self, node: cst.Call) -> None:
        if _is_from_numpy(node) and self.functions:
            key = (self.functions[-1], node.args[0].value.value)
            self.wrapped[key] = self.wrapped.get(key, 0) + 1

    def visit_Name(self, node: cst.Name) -> None:
        if self.functions:
            key = (self.functions[-1], node.value)
            self.loads[key] = self.loads.get(key, 0) + 1


def _top_level(module: cst.Module) -> dict[str, cst.CSTNode]:
    return {s.name.value: s for s in module.body if isinstance(s, (cst.ClassDef, cst.FunctionDef))}


def _references(module: cst.Module) -> dict[str, set[str]]:
    """Top-level name -> the top-level definitions (or '<module>') whose code mentions it."""
    refs: dict[str, set[str]] = {}
    for stmt in module.body:
        owner = stmt.name.value if isinstance(stmt, (cst.ClassDef, cst.FunctionDef)) else "<module>"
        if owner == "<module>" and isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
            continue
        for n in _names(stmt):
            if n.value != owner:
                refs.setdefault(n.value, set()).add(owner)
    return refs


def _bases(module: cst.Module) -> dict[str, list[str]]:
    """Class -> its base classes defined in this module, transitively."""
    defs = _top_level(module)
    direct = {name: [b.value.value for b in node.bases if isinstance(b.value, cst.Name) and b.value.value in defs]
              for name, node in defs.items() if isinstance(node, cst.ClassDef)}
    out = {}
    for name in direct:
        seen, todo = [], list(direct[name])
        while todo:
            b = todo.pop()
            if b not in seen:
                seen.append(b)
                todo += direct.get(b, [])
        out[name] = seen
    return out


def _method(cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else []
    return next((s for s in body if isinstance(s, cst.FunctionDef) and s.name.value == name), None)


def _bound_at_top(module: cst.Module) -> set[str]:
    names = set(_top_level(module))
    for stmt in module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        names.add(alias.evaluated_alias or _src(alias.name).split(".")[0])
                elif isinstance(small, cst.Assign):
                    names.update(n.value for t in small.targets for n in _names(t.target))
    return names


def _class_plan(module: cst.Module, plan: ClassPlan, names: dict[str, str], aliases: dict[str, str],
                tree: dict[str, str] | None = None) -> tuple[cst.Module, str | None, str | None]:
    """(rewritten module, why not, the factory's source when the class is reached through a table)."""
    defs = _top_level(module)
    cls = defs.get(plan.name)
    if not isinstance(cls, cst.ClassDef):
        return module, "the class is not defined at the top of the port", None
    scan = _Scan(plan.name, _bases(module))
    module.visit(scan)
    block = re.match(r"\s*([\w.]+)\(", _aliased(plan.code.main, aliases))
    if scan.dispatch and not block:
        return module, f"code dispatches on its type: {scan.dispatch[0]}", None
    if scan.other_uses:
        return module, f"it is referenced other than by calling it by name (in {scan.other_uses[0]}), so not every instantiation can be rewritten", None
    factory = bool(scan.table_uses)  # built through a table or an alias: the name keeps building the block
    if not scan.sites and not factory:
        return module, "it is never instantiated in the port", None
    init = _method(cls, "__init__")
    ctor = params_of(init) if init else params_from_record(plan.init_params)
    forward_def = _method(cls, "forward")
    forward = params_of(forward_def) if forward_def else None
    needs_sites = bool(plan.code.call or plan.code.slots)
    if needs_sites and forward is None and plan.code.call:
        return module, "its forward is inherited, so its call sites cannot be adapted", None
    for call, _, _, _ in scan.sites:
        bound = bind(ctor, call)
        if isinstance(bound, str):
            return module, f"an instantiation cannot be read: {bound}", None
        repeated = [p for p in bound if sum(PLACEHOLDER.findall(e).count(p) for e in plan.exprs.values()) > 1 and not _pure(bound[p])]
        if repeated:
            return module, f"argument {repeated[0]!r} would be evaluated twice", None
        for p, proven in plan.frozen.items():
            known, value = _literal(bound.get(p, "..."))
            if known and value != proven:
                return module, f"an instantiation passes {p}={bound[p]}, which no proven instance had ({proven!r}) and the block has no setting for", None
    attrs: dict[tuple[str, str], dict[str, str]] = {}
    containers: set[tuple[str, str]] = set()
    glue_calls: set[int] = set()
    call = None
    if needs_sites:
        attrs, containers, why = ({}, set(), f"it is reached through a table or an alias (in {scan.table_uses[0]})") if factory else _direct_sites(scan, plan)
        if why and not plan.code.slots and tree:  # call sites found from where the traced instances sit instead
            glue_calls, tree_why = _tree_sites(module, plan.name, tree)
            why = f"{why}; {tree_why}" if tree_why else None
        if why:
            return module, why, None
        if factory and scan.siblings and plan.code.call:
            call = _positional_call(plan.code)
            if call is None:
                return module, f"it shares a table with {', '.join(sorted(scan.siblings))}, whose instances the block's call would not fit", None
    source = None
    if factory:
        source = _factory(plan, init, names, aliases)
        if source.startswith("!"):
            return module, source[1:], None
    rewrite = _RewriteClass(plan, ctor, forward, {k: {s: a for s, a in v.items() if s} for k, v in attrs.items()}, names, aliases,
                            containers, glue_calls, call)
    rewritten = module.visit(rewrite)
    if rewrite.error:
        return module, rewrite.error, None
    if scan.dispatch:  # code that calls by type: the block takes the reference class's place there too
        rewritten = rewritten.visit(_WidenDispatch(scan.dispatch_names, plan.name, block.group(1)))
    return rewritten, None, source


def _direct_sites(scan: _Scan, plan: ClassPlan) -> tuple[dict[tuple[str, str], dict[str, str]], set[tuple[str, str]], str | None]:
    """Call sites of instances assigned as `self.<attr> = Class(...)`, with free names for the slots."""
    attrs: dict[tuple[str, str], dict[str, str]] = {}
    used_attrs = {k: set(v) for k, v in scan.class_attrs.items()}
    containers: set[tuple[str, str]] = set()
    for _, owner, attr, container in scan.sites:
        if owner is None or attr is None:
            return {}, set(), "it is instantiated where its call sites cannot be found (not as `self.<name> = ...`)"
        key = (owner, attr)
        if scan.attr_assigned.get(key, 0) != 1:
            return {}, set(), f"self.{attr} is assigned more than once in {owner}"
        if container:  # a module list of instances: called through `for block in self.<attr>:` loops
            why = _container_refusal(scan, key, plan)
            if why:
                return {}, set(), why
            containers.add(key)
            continue
        uses = len(scan.attr_uses.get(key, []))
        if uses != 1 + scan.attr_calls.get(key, 0):
            return {}, set(), f"self.{attr} is used other than by calling it in {owner}"
        slots = {}
        for slot, _ in plan.code.slots:
            name = slot if slot not in used_attrs.setdefault(owner, set()) else f"{attr}_{slot}"
            if name in used_attrs[owner]:
                return {}, set(), f"no free attribute name for its {slot} in {owner}"
            used_attrs[owner].add(name)
            slots[slot] = name
        attrs[key] = slots or {"": ""}
    return attrs, containers, None


def _chain(node: cst.BaseExpression) -> list[tuple[str, str | None]] | None:
    """`self.down[i].block[j]` -> [("attr", "down"), ("item", None), ("attr", "block"), ("item", None)]
    (a literal index is kept); None when the expression is not such a chain from `self`."""
    segments: list[tuple[str, str | None]] = []
    while not (isinstance(node, cst.Name) and node.value == "self"):
        if isinstance(node, cst.Attribute):
            segments.append(("attr", node.attr.value))
        elif isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            known, key = _literal(_src(node.slice[0].slice.value))
            segments.append(("item", str(key) if known and isinstance(key, (int, str)) and not (isinstance(key, int) and key < 0) else None))
        else:
            return None
        node = node.value
    return segments[::-1]


class _Chains(cst.CSTVisitor):
    """Every attribute / subscript expression in a class, and which of them are called or assigned."""

    def __init__(self) -> None:
        self.nodes: list[cst.BaseExpression] = []
        self.called: dict[int, cst.Call] = {}
        self.targets: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        self.called[id(node.func)] = node

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self.targets.add(id(node.target))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self.nodes.append(node)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        self.nodes.append(node)


def _reached(children: dict[str, dict[str, str]], start: str, segments: list[tuple[str, str | None]]) -> set[str]:
    """The module paths a chain of attributes / indices reaches from the module at `start`."""
    at = {start}
    for _, key in segments:
        at = {c for p in at for name, c in children.get(p, {}).items() if key is None or name == key}
    return at


def _tree_sites(module: cst.Module, name: str, tree: dict[str, str]) -> tuple[set[int], str | None]:
    """The calls that reach instances of `name`, found from the traced module tree (path -> class):
    in each class of the port, a call of `self.a[i].b(...)` reaches the modules at `a.*.b` under
    every instance of that class. Each such call must reach only instances of `name`, every
    instance must be reached by one, and nothing may reach them other than by calling."""
    children: dict[str, dict[str, str]] = {}
    for path in tree:
        if path:
            parent, _, child = path.rpartition(".")
            children.setdefault(parent, {})[child] = path
    wanted = {p for p, c in tree.items() if c == name}
    covered: set[str] = set()
    calls: set[int] = set()
    for owner, node in _top_level(module).items():
        starts = [p for p, c in tree.items() if c == owner]
        if owner == name or not starts or not isinstance(node, cst.ClassDef):
            continue
        chains = _Chains()
        node.visit(chains)
        for expr in chains.nodes:
            segments = _chain(expr)
            if not segments:
                continue
            reached = set().union(*(_reached(children, s, segments) for s in starts))
            hits = reached & wanted
            if not hits or id(expr) in chains.targets:
                continue
            if id(expr) not in chains.called:
                return set(), f"{_src(expr)} in {owner} reaches it other than by calling it"
            if hits != reached:
                return set(), f"{_src(expr)}(...) in {owner} calls it and other modules alike"
            calls.add(id(chains.called[id(expr)]))
            covered |= hits
    missing = sorted(wanted - covered)
    if missing:
        return set(), f"no call of the instance at {missing[0]} was found in the port"
    return calls, None


def _positional_call(code: BlockCode) -> str | None:
    """The family's call glue as a positional call, when each argument it passes sits at the same
    position in the reference's forward and the block's (`code.positions`): then code that may
    build either the block or another class of the reference's signature calls both correctly."""
    m = re.fullmatch(r"\{self\}\((.*)\)", code.call or "")
    if not m or not code.positions:
        return None
    parts = [a.strip() for a in m.group(1).split(",")]
    for i, part in enumerate(parts):
        key, _, value = part.rpartition("=")
        position = code.positions.index(key) if key in code.positions else (0 if not key else -1)
        if position != i or value != "{" + str(i) + "}":
            return None
    return "{self}(" + ", ".join("{" + str(i) + "}" for i in range(len(parts))) + ")"


def _factory(plan: ClassPlan, init: cst.FunctionDef | None, names: dict[str, str], aliases: dict[str, str]) -> str:
    """A function of the class's name and constructor signature that builds the block ('!' + why
    not): every table or alias holding the name then builds the block."""
    if init is None:
        return "!it is reached through a table but its constructor is inherited"
    params = params_of(init)
    if any(p.kind in ("star", "starstar") for p in params):
        return "!it is reached through a table and its constructor takes *args / **kwargs"
    text = _format(plan, plan.code.main, {p.name: p.name for p in params}, names, aliases)
    if text is None:
        return "!a setting cannot be written from its constructor's arguments"
    block_name = plan.code.main.split("(", 1)[0]
    signature = _src(init.params.with_changes(params=init.params.params[1:]))
    lines = [
        f"def {plan.name}({signature}):",
        f'    """Builds diffusers\' `{block_name}` (proven to compute what the reference `{plan.name}` did); a function of the',
        '    reference name and constructor arguments because code builds it through a table or an alias."""',
    ]
    for p, proven in plan.frozen.items():
        lines += [f"    if {p} != {proven!r}:",
                  f'        raise ValueError(f"{plan.name} is built as {block_name}, proven for {p}={proven!r} only, not {{{p}!r}}")']
    lines.append(f"    return {text}")
    return "\n".join(lines) + "\n"


def _container_plan(module: cst.Module, plan: ClassPlan, names: dict[str, str], aliases: dict[str, str]) -> tuple[cst.Module, str | None]:
    """`self.<attr> = nn.Sequential(...)` in the owner's constructor becomes the block, its dims
    written over the owner's own constructor arguments (which the constructor must not rebind)."""
    owner, attr = plan.container
    cls = _top_level(module).get(owner)
    init = _method(cls, "__init__") if isinstance(cls, cst.ClassDef) else None
    if init is None:
        return module, f"{owner} has no constructor of its own in the port"
    scan = _Scan(MARK, {})  # a name no code uses: only the attribute bookkeeping matters
    module.visit(scan)
    key = (owner, attr)
    if scan.attr_assigned.get(key, 0) != 1:
        return module, f"self.{attr} is not assigned exactly once in {owner}"
    if len(scan.attr_uses.get(key, [])) != 1 + scan.attr_calls.get(key, 0):
        return module, f"self.{attr} is used other than by calling it in {owner}"
    params = params_of(init)
    used = {p for e in plan.exprs.values() for p in PLACEHOLDER.findall(e)}
    rebound = sorted(used & {n.value for n in _assigned_names(init)})
    if rebound:
        return module, f"{owner}'s constructor rebinds its argument {rebound[0]!r}"
    text = _format(plan, plan.code.main, {p.name: p.name for p in params if p.kind in ("positional", "keyword")}, names, aliases)
    if text is None:
        return module, "a setting cannot be written from the owner's constructor arguments"
    rewrite = _ReplaceAssigned(owner, attr, cst.parse_expression(text))
    rewritten = module.visit(rewrite)
    return (rewritten, None) if rewrite.done else (module, f"self.{attr} is not assigned a value in {owner}.__init__")


def _assigned_names(fn: cst.FunctionDef) -> list[cst.Name]:
    found: list[cst.Name] = []

    class Collect(cst.CSTVisitor):
        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            found.extend(_names(node.target) if not isinstance(node.target, cst.Attribute) else [])

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            found.extend(_names(node.target))

        def visit_For(self, node: cst.For) -> None:
            found.extend(_names(node.target))

    fn.body.visit(Collect())
    return found


class _ReplaceAssigned(cst.CSTTransformer):
    """The value of `self.<attr> = ...` in `owner.__init__` replaced."""

    def __init__(self, owner: str, attr: str, value: cst.BaseExpression):
        self.owner, self.attr, self.value = owner, attr, value
        self.where: list[str] = []
        self.done = False

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.where.append(node.name.value)

    def leave_ClassDef(self, original, updated):
        self.where.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.where.append(node.name.value)

    def leave_FunctionDef(self, original, updated):
        self.where.pop()
        return updated

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        if self.where[:2] == [self.owner, "__init__"] and len(original.targets) == 1 and _self_attr(original.targets[0].target) == self.attr:
            self.done = True
            return updated.with_changes(value=self.value)
        return updated


def _container_refusal(scan: _Scan, key: tuple[str, str], plan: ClassPlan) -> str | None:
    """Why the instances in the module list `key` cannot get the block's glue, or None."""
    owner, attr = key
    if plan.code.slots:
        return f"its instances sit in the module list self.{attr}, and the block needs extra modules beside each"
    iterated = scan.iterated.get(key, 0)
    if not iterated or len(scan.attr_uses.get(key, [])) != 1 + iterated:
        return f"the module list self.{attr} is used other than by looping over it in {owner}"
    if scan.loop_other.get(key, 0) or not scan.loop_calls.get(key, 0):
        return f"the loop variable over self.{attr} is used other than by calling it in {owner}"
    return None


class _WidenDispatch(cst.CSTTransformer):
    """`isinstance(x, Base)` -> `isinstance(x, (Base, Block))` for a base of the replaced class,
    `isinstance(x, Replaced)` -> `isinstance(x, Block)`: what dispatched on the reference class's
    type dispatches the same way on the block (full-model parity checks the effect)."""

    def __init__(self, names: set[str], replaced: str, block: str):
        self.names, self.replaced, self.block = names, replaced, block

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        func = updated.func
        if not (isinstance(func, cst.Name) and func.value in ("isinstance", "issubclass") and len(updated.args) == 2):
            return updated
        kinds = updated.args[1].value
        members = [e.value for e in kinds.elements] if isinstance(kinds, cst.Tuple) else [kinds]
        if not any(isinstance(m, cst.Name) and m.value in self.names for m in members):
            return updated
        block = cst.parse_expression(self.block)
        kept = [block if isinstance(m, cst.Name) and m.value == self.replaced else m for m in members]
        if self.replaced not in {m.value for m in members if isinstance(m, cst.Name)}:
            kept.append(block)
        new = kept[0] if len(kept) == 1 else cst.Tuple([cst.Element(m) for m in kept])
        return updated.with_changes(args=[updated.args[0], updated.args[1].with_changes(value=new)])


def _function_plan(module: cst.Module, plan: FunctionPlan, aliases: dict[str, str]) -> tuple[cst.Module, str | None]:
    fn = _top_level(module).get(plan.name)
    if not isinstance(fn, cst.FunctionDef):
        return module, "the function is not defined at the top of the port"
    params = params_of(fn, skip_first=False)
    if set(plan.roles.values()) - {p.name for p in params}:
        return module, "its parameters are not the ones the proof used"
    scan_fn = _FunctionScan(plan.name)
    module.visit(scan_fn)
    if scan_fn.other_uses:
        return module, f"it is used other than by calling it (in {scan_fn.other_uses[0]})"
    strip: set[tuple[str, str]] = set()
    if plan.code.numpy_to_torch:
        uses = _NumpyUses(plan.name)
        module.visit(uses)
        if not uses.bare_calls and uses.assigned and all(
            n == 1 and uses.wrapped.get(k, 0) and uses.loads.get(k, 0) == 1 + uses.wrapped[k] for k, n in uses.assigned.items()
        ):
            strip = set(uses.assigned)
    rewrite = _RewriteFunction(plan, params, aliases, strip)
    rewritten = module.visit(rewrite)
    return (module, rewrite.error) if rewrite.error else (rewritten, None)


class _FunctionScan(cst.CSTVisitor):
    def __init__(self, name: str):
        self.name = name
        self.funcs: set[int] = set()
        self.other_uses: list[str] = []
        self.where: list[str] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if not self.where and node.name.value == self.name:
            return False
        self.where.append(node.name.value)
        return True

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self.where and self.where[-1] == node.name.value:
            self.where.pop()

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == self.name:
            self.funcs.add(id(node.func))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name and id(node) not in self.funcs:
            self.other_uses.append(self.where[-1] if self.where else "module level")


def _removable(original: cst.Module, applied: set[str]) -> set[str]:
    """The applied definitions, plus what only removed definitions used."""
    refs = _references(original)
    defs = set(_top_level(original))
    removed = set(applied)
    changed = True
    while changed:
        changed = False
        for name in defs - removed:
            owners = refs.get(name, set())
            if owners and owners <= removed:
                removed.add(name)
                changed = True
    return removed


def _import_lines(imports: list[tuple[str, str]], relative: str | None, aliases: dict[str, str], bound: set[str]) -> list[str]:
    by_module: dict[str, list[str]] = {}
    for module, name in imports:
        if module == "torch" and name in bound:
            continue
        module = _module_path(module, relative)
        entry = f"{name} as {aliases[name]}" if name in aliases else name
        if entry not in by_module.setdefault(module, []):
            by_module[module].append(entry)
    return [f"from {m} import {', '.join(sorted(names))}" for m, names in sorted(by_module.items())]


def _insert_imports(module: cst.Module, lines: list[str]) -> cst.Module:
    if not lines:
        return module
    body = list(module.body)
    last = max((i for i, s in enumerate(body) if isinstance(s, cst.SimpleStatementLine) and all(isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body)), default=-1)
    new = [cst.parse_statement(line + "\n") for line in lines]
    return module.with_changes(body=body[: last + 1] + new + body[last + 1:])


def _insert_definitions(module: cst.Module, sources: dict[str, str]) -> cst.Module:
    """Each definition right before the first top-level statement that uses its name."""
    body = list(module.body)
    for name, source in sources.items():
        stmts = list(cst.parse_module(source).body)
        at = next((i for i, s in enumerate(body) if any(n.value == name for n in _names(s))), len(body))
        body[at:at] = stmts
    return module.with_changes(body=body)


MARK = "__integrate_block_"


def substitute(source: str, classes: list[ClassPlan], functions: list[FunctionPlan], *, relative: str | None = None,
               prefix: str = "", tree: dict[str, str] | None = None) -> Outcome:
    """Apply the plans that can be written; `relative` is the import prefix for diffusers modules
    inside a diffusers checkout (e.g. '..'), None for a standalone file importing `diffusers`.
    `tree` (module path in the traced model -> the port's class name there, '' the model) finds
    the call sites of instances kept in containers or built through a table.

    While plans are applied, the names the blocks bring in are written with a marker, so a later
    plan never mistakes a block for a reference class of the same name (a reference `Attention`
    replaced by diffusers' `Attention`); once the reference definitions are removed, each becomes
    its plain name, or `Diffusers<Name>` where a remaining definition still holds that name."""
    original = cst.parse_module(source)
    module = original
    taken = _bound_at_top(original)
    marks = {name: MARK + name for _, name in _all_imports(classes, functions) if name != "nn"}
    definitions: dict[str, str] = {}  # final name -> source
    by_source: dict[str, str] = {}
    applied: list[str] = []
    failed: dict[str, str] = {}
    factories: dict[str, str] = {}  # class name -> the function of that name that builds its block
    imports: list[tuple[str, str]] = []
    for plan in classes:
        names = {}
        for placeholder, preferred, template in plan.code.definitions:
            if template not in by_source:
                base = prefix + preferred if preferred[:1].isupper() else preferred  # helper functions keep their name
                name, n = base, 2
                while name in taken or name in definitions:
                    name, n = f"{base}{n}", n + 1
                by_source[template] = name
                definitions[name] = _aliased(template.format(**{placeholder: name}), marks)
            names[placeholder] = by_source[template]
        if plan.container:
            module2, why, factory = (*_container_plan(module, plan, names, marks), None)
        else:
            module2, why, factory = _class_plan(module, plan, names, marks, tree)
        if why:
            failed[plan.name] = why
            continue
        module = module2
        applied.append(plan.name)
        imports += plan.code.imports
        if factory:
            factories[plan.name] = factory
    for plan in functions:
        module2, why = _function_plan(module, plan, marks)
        if why:
            failed[plan.name] = why
            continue
        module = module2
        applied.append(plan.name)
        imports += plan.code.imports
    removed = _removable(original, set(applied))
    body: list[cst.CSTNode] = []
    for s in module.body:
        name = s.name.value if isinstance(s, (cst.ClassDef, cst.FunctionDef)) else None
        if name in factories:
            body += list(cst.parse_module(factories[name]).body)
        elif name not in removed:
            body.append(s)
    module = module.with_changes(body=body)
    used_defs = {name: src for name, src in definitions.items() if any(name in _src(s) for s in module.body)}
    module = _insert_definitions(module, used_defs)
    remaining = _bound_at_top(module)
    already = _imported_from(module)
    wanted = {name: _module_path(m, relative) for m, name in imports}
    final = {name: (name if name not in remaining or already.get(name) == (wanted.get(name), name) else _alias(name)) for name in marks}
    imports = [(m, n) for m, n in imports if already.get(n) != (_module_path(m, relative), n)]
    lines = _import_lines(imports, relative, {n: a for n, a in final.items() if a != n}, remaining)
    module = _insert_imports(module, lines)
    text = module.code
    for name, mark in marks.items():
        text = re.sub(rf"\b{mark}\b", final[name], text)
    module, _ = drop_unused_imports(cst.parse_module(text))
    return Outcome(module.code, applied, failed, sorted(removed - set(applied)), sorted(used_defs), lines)


def _alias(name: str) -> str:
    return f"Diffusers{name}" if name[:1].isupper() else f"diffusers_{name}"


def _module_path(module: str, relative: str | None) -> str:
    if relative is not None and module.startswith("diffusers.models."):
        return relative + module.removeprefix("diffusers.models.")
    return module


def _imported_from(module: cst.Module) -> dict[str, tuple[str, str]]:
    """Names bound by `from M import N [as A]` at the top of the module: bound name -> (M, N)."""
    out = {}
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                path = "." * len(small.relative) + (_src(small.module) if small.module else "")
                for alias in small.names:
                    out[alias.evaluated_alias or alias.evaluated_name] = (path, alias.evaluated_name)
    return out


def _all_imports(classes: list[ClassPlan], functions: list[FunctionPlan]) -> list[tuple[str, str]]:
    return [i for p in [*classes, *functions] for i in p.code.imports]
