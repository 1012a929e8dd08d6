"""From the proof job's result (untrusted data) to plans the codemod can write, and the report.

The job says, per reference class, which family and choice was exact on every recorded call and
the dims it read from each instance. Here that is checked (a known family, a choice from its
enumerated settings, numbers where numbers belong, a difference within the tolerance), and each
dim is written as an expression over the class's constructor arguments, found from the values
the constructor received for every instance (`{dim}`, `{dim} // {num_heads}`,
`int({hidden_size} * {mlp_ratio})`, or a literal when no argument carries it). Pure Python: the
host imports it, the sandbox never does.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any

from . import BY_NAME
from .base import BlockCode, words

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SMALL = (None, True, False, 0, 1, -1, 0.0, 1.0)
MULTIPLIERS = (2, 3, 4, 6, 8)


@dataclass
class ClassDecision:
    name: str  # reference class
    port_name: str
    parameters: int
    instances: list[str]
    instance_parameters: dict[str, int] = field(default_factory=dict)
    family: str | None = None
    block: str | None = None
    origin: str | None = None
    choice: dict[str, Any] = field(default_factory=dict)
    code: BlockCode | None = None
    exprs: dict[str, str] = field(default_factory=dict)
    init_params: list[dict[str, Any]] = field(default_factory=list)
    max_abs: float | None = None
    calls: int = 0
    reason: str | None = None
    closest: str | None = None
    tried: dict[str, str] = field(default_factory=dict)
    frozen: dict[str, Any] = field(default_factory=dict)  # constructor arguments the block does not take, as proven
    container: tuple[str, str] | None = None  # (owner class in the port, attribute): a plain nn.Sequential the block replaces

    @property
    def proven(self) -> bool:
        return self.code is not None


@dataclass
class FunctionDecision:
    name: str
    port_name: str
    family: str | None = None
    block: str | None = None
    choice: dict[str, Any] = field(default_factory=dict)
    code: BlockCode | None = None
    roles: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    max_abs: float | None = None
    calls: int = 0
    reason: str | None = None
    closest: str | None = None

    @property
    def proven(self) -> bool:
        return self.code is not None


class Malformed(ValueError):
    pass


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _same(value: Any, arg: Any) -> bool:
    """A dim value equals a constructor argument: bools only with bools, numbers by value."""
    if isinstance(value, list):
        return any(_same(v, arg) for v in value)
    if value is None or arg is None:
        return value is arg
    if isinstance(value, bool) or isinstance(arg, bool):
        return isinstance(value, bool) and isinstance(arg, bool) and value == arg
    if isinstance(value, (int, float)) and isinstance(arg, (int, float)):
        return math.isclose(value, arg, rel_tol=1e-12, abs_tol=0.0) if isinstance(value, float) or isinstance(arg, float) else value == arg
    return value == arg


def _small(value: Any) -> bool:
    return any(_same(value, s) for s in SMALL) if not isinstance(value, list) else all(_small(v) for v in value)


def _affinity(dim: str, param: str, aliases: tuple[str, ...]) -> int:
    """2 when one name's words contain the other's (`bias` and `qkv_bias`), 1 when they share a
    word (`out_bias` and `qkv_bias`), else 0; the dim's aliases count as its words."""
    mine, theirs = words(dim) | set(aliases), words(param)
    if theirs <= mine or words(dim) <= theirs:
        return 2
    return 1 if mine & theirs else 0


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
        ast.Div: operator.truediv, ast.Mod: operator.mod}
_CASTS = {"int": int, "float": float, "round": round}


def _evaluate(node: ast.AST, args: dict[str, Any]) -> Any:
    """Arithmetic over constructor arguments; anything else raises ValueError (never eval)."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and type(args.get(node.id)) in (int, float):
        return args[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_evaluate(node.left, args), _evaluate(node.right, args))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, args)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CASTS and len(node.args) == 1 and not node.keywords:
        return _CASTS[node.func.id](_evaluate(node.args[0], args))
    raise ValueError("not arithmetic over constructor arguments")


def init_expressions(source: str, class_name: str) -> list[tuple[str, ast.AST]]:
    """Arithmetic the class's constructor writes over its own parameters (locals assigned once
    are inlined), as templates (`{patch_size} * {patch_size} * {out_channels}`): where a block's
    setting equals one of them, the port keeps the reference's own formula."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) if cls else None
    if init is None:
        return []
    params = {a.arg for a in [*init.args.posonlyargs, *init.args.args[1:], *init.args.kwonlyargs]}
    assigned: dict[str, list[ast.AST]] = {}
    for stmt in init.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            assigned.setdefault(stmt.targets[0].id, []).append(stmt.value)
    locals_ = {k: v[0] for k, v in assigned.items() if len(v) == 1 and k not in params}

    class Inline(ast.NodeTransformer):
        depth = 0

        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in locals_ and self.depth < 4:
                self.depth += 1
                out = self.visit(ast.parse(ast.unparse(locals_[node.id]), mode="eval").body)
                self.depth -= 1
                return out
            return node

    out, seen = [], set()
    for node in ast.walk(init):
        if not isinstance(node, (ast.BinOp, ast.Call)) or (isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _CASTS)):
            continue
        inlined = Inline().visit(ast.parse(ast.unparse(node), mode="eval").body)
        names = {n.id for n in ast.walk(inlined) if isinstance(n, ast.Name)} - set(_CASTS)
        if not names or not names <= params:
            continue
        text = ast.unparse(inlined)
        if text not in seen:
            seen.add(text)
            template = re.sub(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b", r"{\1}", text)
            out.append((template, inlined))
    return out


def express(dim: str, values: list[Any], args: list[dict[str, Any]], aliases: tuple[str, ...] = (),
            sourced: list[tuple[str, ast.AST]] = ()) -> str | None:
    """An expression over constructor parameters (as `{name}` placeholders) that has `values[k]`
    for the arguments `args[k]` of every instance: a parameter itself, else a formula the
    constructor itself writes (`sourced`), else a quotient or product of two parameters, else a
    literal when the value is the same everywhere; None when nothing fits."""
    params = [p for p in args[0] if all(p in a and _scalar(a[p]) for a in args)]
    singles = [p for p in params if all(_same(v, a[p]) for v, a in zip(values, args, strict=True))]
    if any(_small(v) for v in values):
        singles = [p for p in singles if _affinity(dim, p, aliases) == 2]
    if singles:
        return "{" + max(singles, key=lambda p: (p == dim, _affinity(dim, p, aliases), len(words(p) & words(dim)), -params.index(p))) + "}"
    if not any(_small(v) for v in values):
        for template, node in sourced:
            try:
                if all(_same(v, _evaluate(node, a)) for v, a in zip(values, args, strict=True)):
                    return template
            except (ValueError, ArithmeticError, TypeError):
                continue
    ints = [p for p in params if all(type(a[p]) is int for a in args)]
    floats = [p for p in params if all(type(a[p]) in (int, float) for a in args)]
    if not any(_small(v) for v in values) and all(type(v) is int for v in values):
        for p in ints:
            for q in ints:
                if p != q and all(a[q] and a[p] // a[q] == v and a[p] % a[q] == 0 for v, a in zip(values, args, strict=True)):
                    return f"{{{p}}} // {{{q}}}"
                if p < q and all(a[p] * a[q] == v for v, a in zip(values, args, strict=True)):
                    return f"{{{p}}} * {{{q}}}"
            for q in floats:
                if q != p and any(type(a[q]) is float for a in args) and all(int(a[p] * a[q]) == v for v, a in zip(values, args, strict=True)):
                    return f"int({{{p}}} * {{{q}}})"
    first = values[0][0] if isinstance(values[0], list) else values[0]
    if all(_same(v, first) for v in values):
        return repr(first)
    if all(type(v) is int for v in values):
        for p in ints:
            for c in MULTIPLIERS:
                if all(a[p] * c == v for v, a in zip(values, args, strict=True)):
                    return f"{{{p}}} * {c}"
                if all(a[p] // c == v and a[p] % c == 0 for v, a in zip(values, args, strict=True)):
                    return f"{{{p}}} // {c}"
    return None


def template_dims(code: BlockCode) -> set[str]:
    """The dims a family's constructor templates need (definitions' names are not dims)."""
    placeholders = set(re.findall(r"\{(\w+)\}", code.main + "".join(t for _, t in code.slots)))
    return placeholders - {p for p, _, _ in code.definitions}


def _describe_choice(choice: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in choice.items())


def _closest(tries: list[Any]) -> tuple[str | None, str]:
    """The nearest miss among the tried settings, and the reason it stays custom."""
    measured = [t for t in tries if isinstance(t, dict) and isinstance(t.get("max_abs"), (int, float))]
    if measured:
        best = min(measured, key=lambda t: t["max_abs"])
        family = BY_NAME.get(str(best.get("family")))
        block = family.block_for(best.get("choice") or {}) if family and _valid_choice(family, best.get("choice")) else (family.block if family else str(best.get("family")))
        why = f"closest is {block} ({_describe_choice(best.get('choice') or {})}): max abs {best['max_abs']:.3g}"
        if best.get("others"):
            why = f"closest is {block}: exact on the first instance, but {best['others']}"
        return block, why
    failed = [t for t in tries if isinstance(t, dict) and t.get("error")]
    if failed:
        family = BY_NAME.get(str(failed[0].get("family")))
        block = family.block if family else str(failed[0].get("family"))
        return block, f"closest is {block}: {failed[0]['error']}"
    return None, "no block family fits"


def _fits(tries: list[Any]) -> dict[str, str]:
    """Why each family that did not fit was turned down (from the shapes and the calls)."""
    return {str(t.get("family")): str(t.get("reason")) for t in tries if isinstance(t, dict) and t.get("fits") is False}


def _valid_choice(family: Any, choice: Any) -> bool:
    return isinstance(choice, dict) and choice in family.choices()


def _dims_ok(dims: Any) -> bool:
    return isinstance(dims, dict) and all(isinstance(k, str) and (_scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v))) for k, v in dims.items())


def decide_class(entry: dict[str, Any], tolerance: float, port_name: str, source: str = "", attribute: str | None = None) -> ClassDecision:
    """`attribute`: the entry is the nn.Sequential this attribute of the class holds (its dims are
    written over the owner's constructor arguments; nothing is assumed of the owner's others)."""
    instances = [i for i in entry.get("instances", []) if isinstance(i, dict)]
    owner = port_name
    if attribute is not None:
        entry = {**entry, "name": f"{entry.get('name')}.{attribute}"}
        port_name = f"{owner}.{attribute}"
    d = ClassDecision(name=str(entry.get("name")), port_name=port_name, parameters=sum(int(i.get("parameters", 0)) for i in instances),
                      instances=[str(i.get("name")) for i in instances],
                      instance_parameters={str(i.get("name")): int(i.get("parameters", 0)) for i in instances}, init_params=[p for p in entry.get("init_params", []) if isinstance(p, dict)])
    accepted = entry.get("accepted")
    if not accepted:
        d.closest, d.reason = _closest(entry.get("tries", []))
        d.tried = _fits(entry.get("tries", []))
        if entry.get("reason"):
            d.reason = str(entry["reason"])
        return d
    family = BY_NAME.get(str(accepted.get("family")))
    max_abs = accepted.get("max_abs")
    dims = accepted.get("dims")
    if family is None or family.kind != "module" or not _valid_choice(family, accepted.get("choice")):
        raise Malformed(f"{d.name}: unknown family or setting")
    if not isinstance(max_abs, (int, float)) or not max_abs <= tolerance or not isinstance(dims, dict):
        raise Malformed(f"{d.name}: the accepted setting is not within the tolerance")
    if set(dims) != set(d.instances) or not all(_dims_ok(v) for v in dims.values()):
        raise Malformed(f"{d.name}: dims do not cover the instances")
    d.family, d.block, d.origin, d.choice, d.max_abs = family.name, family.block_for(accepted["choice"]), family.origin, accepted["choice"], float(max_abs)
    d.calls = int(accepted.get("calls", 0))
    code = family.code(d.choice)
    if attribute is not None:
        d.container = (owner, attribute)
        if code.call or code.slots:
            d.closest, d.reason = family.block, "proven exact, but a block replacing a container must be called as the container was"
            return d
    args = [i.get("init_args") if isinstance(i.get("init_args"), dict) else {} for i in instances]
    sourced = init_expressions(source, owner)
    for dim in sorted(template_dims(code)):
        values = [dims[i].get(dim) for i in d.instances]
        expr = express(dim, values, args, family.aliases.get(dim, ()), sourced)
        if expr is None or not all(IDENT.match(p) for p in re.findall(r"\{(\w+)\}", expr)):
            d.closest, d.reason = family.block, f"proven exact, but its {dim} ({', '.join(map(repr, values[:3]))}) cannot be written from {d.name}'s constructor arguments"
            return d
        d.exprs[dim] = expr
    used = {p for e in d.exprs.values() for p in re.findall(r"\{(\w+)\}", e)}
    for p in args[0] if args and attribute is None else {}:
        values = [a.get(p) for a in args]
        if p not in used and all(_scalar(v) and _same(v, values[0]) for v in values):
            d.frozen[p] = values[0]  # this configuration's value: the port assumes it (the report says so)
    d.code = code
    return d


def decide_function(entry: dict[str, Any], tolerance: float, port_name: str) -> FunctionDecision:
    d = FunctionDecision(name=str(entry.get("name")), port_name=port_name, calls=int(entry.get("calls", 0)))
    accepted = entry.get("accepted")
    if not accepted:
        d.closest, d.reason = _closest(entry.get("tries", []))
        return d
    family = BY_NAME.get(str(accepted.get("family")))
    roles, ignore, max_abs = accepted.get("roles"), accepted.get("ignore", []), accepted.get("max_abs")
    if family is None or family.kind != "function" or not _valid_choice(family, accepted.get("choice")):
        raise Malformed(f"{d.name}: unknown family or setting")
    if not isinstance(max_abs, (int, float)) or not max_abs <= tolerance:
        raise Malformed(f"{d.name}: the accepted setting is not within the tolerance")
    if not (isinstance(roles, dict) and all(isinstance(v, str) and IDENT.match(v) for v in roles.values())
            and isinstance(ignore, list) and all(isinstance(v, str) and IDENT.match(v) for v in ignore)):
        raise Malformed(f"{d.name}: roles are not parameter names")
    code = family.code(accepted["choice"])
    if template_dims(code) != set(roles):
        raise Malformed(f"{d.name}: roles do not match the template")
    d.family, d.block, d.choice, d.code, d.roles, d.ignore, d.max_abs = (
        family.name, family.block_for(accepted["choice"]), accepted["choice"], code, roles, tuple(ignore), float(max_abs))
    return d


def decide(result: dict[str, Any], tolerance: float, renamed: dict[tuple[str, str], str], skip: set[str],
           source: str = "", top: str | None = None) -> tuple[list[ClassDecision], list[FunctionDecision]]:
    """Decisions for every reference class (except `skip`: the model itself), every nn.Sequential
    attribute proven replaceable (a class in `skip` is the port's `top`) and every called reference
    function. `renamed` maps (module, name) to the name the port gave it; `source` is the port's
    code (the constructors' own formulas)."""
    if not isinstance(result, dict) or not isinstance(result.get("classes"), list) or not isinstance(result.get("functions"), list):
        raise Malformed("the proof result has no class and function lists")
    classes, functions = [], []
    for entry in result["classes"]:
        if not isinstance(entry, dict) or not IDENT.match(str(entry.get("name"))) or entry.get("name") in skip:
            continue
        port = renamed.get((str(entry.get("module")), str(entry["name"])), str(entry["name"]))
        classes.append(decide_class(entry, tolerance, port, source))
    for entry in result.get("containers") or []:
        if not isinstance(entry, dict) or not entry.get("accepted") or not IDENT.match(str(entry.get("name"))) \
                or not IDENT.match(str(entry.get("attribute"))):
            continue  # containers that stay as they are are not reported: they were never reference classes
        name = str(entry["name"])
        port = top if name in skip and top else renamed.get((str(entry.get("module")), name), name)
        classes.append(decide_class(entry, tolerance, port, source, attribute=str(entry["attribute"])))
    for entry in result["functions"]:
        if not isinstance(entry, dict) or not IDENT.match(str(entry.get("name"))):
            continue
        port = renamed.get((str(entry.get("module")), str(entry["name"])), str(entry["name"]))
        functions.append(decide_function(entry, tolerance, port))
    return classes, functions


def module_tree(result: dict[str, Any], renamed: dict[tuple[str, str], str], top: str) -> dict[str, str]:
    """Module path in the traced model -> the class the port has there: a reference class by its
    port name, the model itself (path '') as `top`, anything else (torch containers, layers) by its
    dotted name, which no port class has. Empty when the proof sent no tree."""
    rows = result.get("modules")
    if rows is None:
        return {}
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 3 and all(isinstance(x, str) for x in r) for r in rows):
        raise Malformed("the module tree is not a list of [path, module, class]")
    reference = {(str(c.get("module")), str(c.get("name"))) for c in result.get("classes", []) if isinstance(c, dict)}
    return {path: top if path == "" else renamed.get((module, name), name) if (module, name) in reference else f"{module}.{name}"
            for path, module, name in rows}
