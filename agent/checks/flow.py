"""Where values go inside one function: the data flow the argument and mask rules need.

A value counts as *used* when it reaches a call that does work (a component, a helper that uses
it, an unknown function), a returned or yielded value, or a branch whose outcome does work. It is
*not* used when it is only validated (`check_inputs`, `isinstance`, a `raise`), logged,
overwritten before it is read, or stored on `self` and never read back. Values are followed
through assignments, containers, method results, tensor math, comprehensions, same-class and
same-file helpers (whose matching parameter is followed in turn) and `locals()` callback blocks.

All the values asked about are followed in one pass: each variable carries a bit set of the
seeds it came from. The analysis is deliberately simple: statements in order (loops twice),
branch states merged by union, no aliasing of mutable objects beyond "a container that
received the value".
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from agent.checks.registry import child_nodes, walk

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# Calls whose result carries their arguments' values but which do no work with them.
PURE_BUILTINS = {
    "len", "isinstance", "issubclass", "hasattr", "callable", "type", "str", "int", "float", "bool", "list",
    "tuple", "dict", "set", "frozenset", "min", "max", "abs", "round", "sum", "any", "all", "sorted",
    "reversed", "enumerate", "zip", "range", "map", "filter", "iter", "next", "repr", "id", "getattr",
}
# Tensor math: computes a value from its arguments; only the value's own use counts.
MATH_MODULES = ("torch.", "numpy.", "math.", "einops.")
# Attributes that describe a tensor without carrying its values.
METADATA = {"dtype", "device", "is_cuda", "layout", "requires_grad", "ndim"}
_EXCEPTION = re.compile(r"^[A-Z]\w*(?:Error|Exception|Warning)$")
_VALIDATOR = re.compile(r"^_?(?:check|validate)")

State = dict  # variable (or "self.attr") -> bit set of seeds


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _inner_dimension(node: ast.AST) -> bool:
    """`x.shape[k]` or `x.size(k)` with a constant k > 0."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
        k = node.slice
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size" and len(node.args) == 1:
        k = node.args[0]
    else:
        return False
    return isinstance(k, ast.Constant) and isinstance(k.value, int) and k.value > 0


def is_dead_end(call: ast.Call) -> bool:
    """Validation, logging, warnings, deprecation and exceptions: reaching them is not a use."""
    func = call.func
    name = _call_name(func)
    if name in ("print", "warn", "deprecate", "deprecation_warning") or _VALIDATOR.match(name) or _EXCEPTION.match(name):
        return True
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("logger", "logging", "warnings", "log")


def validation_only(stmts: list[ast.stmt]) -> bool:
    for s in stmts:
        if isinstance(s, (ast.Raise, ast.Pass, ast.Assert)):
            continue
        if isinstance(s, ast.Expr) and (isinstance(s.value, ast.Constant) or (isinstance(s.value, ast.Call) and is_dead_end(s.value))):
            continue
        if isinstance(s, ast.If) and validation_only(s.body) and validation_only(s.orelse):
            continue
        return False
    return True


def body_without_docstring(fn: FunctionNode) -> list[ast.stmt]:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        return body[1:]
    return body


def params(fn: FunctionNode) -> list[ast.arg]:
    a = fn.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs]


@dataclass
class Verdict:
    used: bool
    why: str = ""  # for an unused value: how it is lost


@dataclass
class Scope:
    """Where helpers are looked up: the owning class (through a ClassIndex) and the file's functions."""

    classes: object | None = None  # ClassIndex
    cls: ast.ClassDef | None = None
    functions: dict[str, FunctionNode] = field(default_factory=dict)
    memo: dict = field(default_factory=dict)
    callback_names: frozenset[str] | None = None  # what `locals()` hands to callbacks, when known
    imported: frozenset[str] = frozenset()  # names bound to modules and imported objects
    names: object | None = None  # the file's Names
    inherited_loads: frozenset[str] = frozenset()  # self.<attr> read by bases defined in other files

    @classmethod
    def of(cls, ctx, owner: ast.ClassDef | None) -> Scope:
        functions = {n.name: n for n in ctx.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        names = None
        if owner is not None:
            from agent.checks.astutil import string_items

            value = ctx.classes.attr(owner, "_callback_tensor_inputs")
            if value is not None:
                names = frozenset(c.value for c in string_items(value))
        # one memo per file, shared by every rule's flows (helpers and class reads are computed once)
        memo = ctx.__dict__.setdefault("_flow_memo", {})
        return cls(classes=ctx.classes, cls=owner, functions=functions, memo=memo, callback_names=names,
                   imported=frozenset(ctx.names.imports), names=ctx.names, inherited_loads=_external_loads(ctx, owner))

    def helper(self, call: ast.Call) -> FunctionNode | None:
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            if self.classes is not None and self.cls is not None:
                return self.classes.method(self.cls, func.attr)
            return None
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        return None

    def is_math(self, func: ast.expr) -> bool:
        q = self.names.qualify(func, aliases=False) if self.names is not None else ""
        return q.startswith(MATH_MODULES)

    def self_loads_outside(self, fn: FunctionNode) -> set[str]:
        """`self.<attr>` reads in the class's other methods (and same-file ancestors'), and by
        bases in other files. A read inside a property counts only when the property is read."""
        if self.classes is None or self.cls is None:
            return set(self.inherited_loads)
        key = ("loads", id(self.cls))
        if key not in self.memo:
            methods: list[tuple[FunctionNode, set[str], bool]] = []
            for c in self.classes.lineage(self.cls):
                for m in c.body:
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        loads = {
                            n.attr for n in self.nodes(m)
                            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)
                            and isinstance(n.value, ast.Name) and n.value.id == "self"
                        }
                        is_property = any(getattr(d, "id", getattr(d, "attr", "")) in ("property", "cached_property") for d in m.decorator_list)
                        methods.append((m, loads, is_property))
            self.memo[key] = methods
        methods = self.memo[key]
        out = set(self.inherited_loads)
        own: set[str] = set()
        for m, loads, is_property in methods:
            if m is fn:
                own = loads
            elif not is_property:
                out |= loads
        # properties read somewhere (this method included, or a base in another file) pass their reads on
        changed = True
        while changed:
            changed = False
            for m, loads, is_property in methods:
                if is_property and m is not fn and m.name in (out | own) and not loads <= out:
                    out |= loads
                    changed = True
        return out

    def nodes(self, fn: FunctionNode) -> list[ast.AST]:
        """`walk(fn)`, once per function for the file: the argument and mask rules and the
        class-wide `self` reads all look at the same methods."""
        key = ("walk", id(fn))
        if key not in self.memo:
            self.memo[key] = walk(fn)
        return self.memo[key]

    def used_params(self, fn: FunctionNode) -> set[str]:
        """Which parameters of a helper do anything (memoized; a recursive call assumes all)."""
        key = ("params", id(fn), id(self.cls))
        if key not in self.memo:
            self.memo[key] = {p.arg for p in params(fn)}  # while computing: assume used
            names = [p.arg for p in params(fn) if p.arg not in ("self", "cls")]
            verdicts = Flow(fn, self).verdicts(names)
            self.memo[key] = {n for n, v in verdicts.items() if v.used}
        return self.memo[key]


_SELF_READ = re.compile(r"self\.(\w+)(?!\s*=[^=])")


def _external_loads(ctx, owner: ast.ClassDef | None) -> frozenset[str]:
    """Attributes that bases imported from other diffusers modules read on self (a mixin's
    property returning `self._pag_scale` makes storing `_pag_scale` a use).

    Several rules ask this of the same class: the answer (and the files it read, which each
    asking rule records as its dependencies) is kept per class for the file."""
    if owner is None:
        return frozenset()
    memo = ctx.__dict__.setdefault("_external_loads", {})
    if id(owner) not in memo:
        asking, ctx.deps = ctx.deps, set()
        try:
            memo[id(owner)] = (_read_external_loads(ctx, owner), ctx.deps)
        finally:
            ctx.deps = asking
    loads, deps = memo[id(owner)]
    ctx.deps |= deps
    return loads


def _read_external_loads(ctx, owner: ast.ClassDef) -> frozenset[str]:
    from agent.checks.indexes import _memo
    from agent.checks.tree import installed_root, overlaid, resolved

    root = ctx.root or installed_root()
    if root is None:
        return frozenset()
    out: set[str] = set()
    for c in ctx.classes.lineage(owner):
        for base in c.bases:
            q = ctx.names.qualify(base, aliases=False)
            if not q.startswith("diffusers.") or q.split(".")[-1] in ctx.classes.by_name:
                continue
            parts = q.split(".")[1:-1]
            for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    if overlaid(candidate) is not None:
                        out |= set(_SELF_READ.findall(ctx.read_other(candidate) or ""))
                    else:  # the same base module (pipeline_utils.py) is read for most pipelines
                        ctx.deps.add(str(resolved(candidate)))
                        out |= _memo(("self-reads", str(resolved(candidate))), lambda c=candidate: frozenset(
                            _SELF_READ.findall(ctx.read_other(c) or "")
                        ))
                    break
    return frozenset(out)


class Flow:
    """Follows several seeds (names) forward through `fn` at once.

    mode "use": which seeds reach a use (`verdicts()`); mode "taint": every call passes taint
    to its result, and `returns` lists which seeds reach each part of each return.
    """

    def __init__(self, fn: FunctionNode, scope: Scope | None = None, *, mode: str = "use") -> None:
        self.fn = fn
        self.scope = scope or Scope()
        self.mode = mode
        self.ctrl: list[int] = []
        self.used = 0
        self.loaded = 0
        self.dead = 0
        self.killed = 0
        self.stored: dict[str, int] = {}
        self.ignored_by: dict[int, str] = {}
        self.returns: list[tuple[ast.Return, list[int]]] = []
        self.effect: ast.AST | None = None  # the call of the current expression statement
        self.seed_assign: dict[str, int] = {}  # locals that become seeds when a call assigns them
        self.metadata_is_use = False  # reading `.dtype`/`.device` of the value counts as using it

    # entry points ------------------------------------------------------------------------------
    def verdicts(self, seeds: list[str]) -> dict[str, Verdict]:
        bits = {name: 1 << i for i, name in enumerate(seeds)}
        st: State = {name: bit for name, bit in bits.items() if name not in self.seed_assign}
        self.block(body_without_docstring(self.fn), st)
        # stored on self and read by another method of the class
        if self.stored:
            elsewhere = self.scope.self_loads_outside(self.fn)
            for key, mask in self.stored.items():
                if key.split(".", 1)[1] in elsewhere:
                    self.used |= mask
        out = {}
        for name, bit in bits.items():
            if self.used & bit:
                out[name] = Verdict(True)
            elif bit in self.ignored_by:
                out[name] = Verdict(False, f"passed only to {self.ignored_by[bit]}(), which never uses it")
            elif any(mask & bit for mask in self.stored.values()):
                attr = next(k for k, m in self.stored.items() if m & bit)
                out[name] = Verdict(False, f"stored in {attr} but never read")
            elif self.killed & bit:
                out[name] = Verdict(False, "overwritten before it is read")
            elif (self.dead | self.loaded) & bit:
                out[name] = Verdict(False, "only checked or converted, never used")
            else:
                out[name] = Verdict(False, "never used")
        return out

    def taint(self, seeds: list[str]) -> list[tuple[ast.Return, list[int]]]:
        self.mode = "taint"
        self.block(body_without_docstring(self.fn), {name: 1 << i for i, name in enumerate(seeds)})
        return self.returns

    # helpers -----------------------------------------------------------------------------------
    @property
    def control(self) -> int:
        out = 0
        for m in self.ctrl:
            out |= m
        return out

    def use(self, mask: int) -> None:
        self.used |= mask

    @staticmethod
    def merge(into: State, other: State) -> None:
        for k, v in other.items():
            into[k] = into.get(k, 0) | v

    # statements --------------------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt], st: State) -> bool:
        """Run `stmts` on `st` in place; True when the block always leaves (return/raise)."""
        for s in stmts:
            if self.stmt(s, st):
                return True
        return False

    def bind(self, target: ast.expr, mask: int, st: State, value: ast.expr | None = None) -> None:
        mask |= self.control
        if isinstance(target, ast.Name):
            if mask:
                st[target.id] = mask
            elif target.id in st:
                self.killed |= st.pop(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) else None
            for i, elt in enumerate(target.elts):
                self.bind(elt, self.peek(values[i], st) if values is not None else mask, st)
        elif isinstance(target, ast.Starred):
            self.bind(target.value, mask, st)
        elif isinstance(target, ast.Attribute):
            if isinstance(target.value, ast.Name) and target.value.id == "self":
                key = f"self.{target.attr}"
                if mask:
                    st[key] = mask
                    self.stored[key] = self.stored.get(key, 0) | mask
                else:
                    st.pop(key, None)
            else:
                self.ev(target.value, st)
                root = _root_name(target.value)
                if mask and root:
                    st[root] = st.get(root, 0) | mask
        elif isinstance(target, ast.Subscript):
            self.ev(target.slice, st)
            root = _root_name(target.value)
            if mask and root and root != "self":
                st[root] = st.get(root, 0) | mask
            elif mask and isinstance(target.value, ast.Attribute) and _root_name(target.value) == "self":
                key = f"self.{target.value.attr}"
                st[key] = st.get(key, 0) | mask
                self.stored[key] = self.stored.get(key, 0) | mask

    def peek(self, node: ast.expr, st: State) -> int:
        """Seeds in an expression that the caller has evaluated already."""
        out = 0
        for n in walk(node):
            if isinstance(n, ast.Name):
                out |= st.get(n.id, 0)
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self":
                out |= st.get(f"self.{n.attr}", 0)
        return out

    def stmt(self, s: ast.stmt, st: State) -> bool:
        if isinstance(s, ast.Assign):
            mask = self.ev(s.value, st)
            for target in s.targets:
                self.bind(target, mask, st, s.value)
                if self.seed_assign and isinstance(s.value, ast.Call):
                    for n in walk(target):
                        if isinstance(n, ast.Name) and n.id in self.seed_assign:
                            st[n.id] = st.get(n.id, 0) | self.seed_assign[n.id]
            return False
        if isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.bind(s.target, self.ev(s.value, st), st, s.value)
            return False
        if isinstance(s, ast.AugAssign):
            mask = self.ev(s.value, st) | self.peek(s.target, st)
            if isinstance(s.target, ast.Name):
                if mask | self.control:
                    st[s.target.id] = mask | self.control
            else:
                self.bind(s.target, mask, st)
            return False
        if isinstance(s, ast.Expr):
            self.effect = s.value
            self.ev(s.value, st)
            if self.ctrl and isinstance(s.value, ast.Call) and not is_dead_end(s.value):
                self.use(self.control)  # work done only when the value decides so
            return False
        if isinstance(s, ast.Return):
            if s.value is not None:
                if self.mode == "taint":
                    parts = s.value.elts if isinstance(s.value, ast.Tuple) else [s.value]
                    self.returns.append((s, [self.ev(p, st) for p in parts]))
                else:
                    self.use(self.ev(s.value, st) | self.control)
            else:
                self.use(self.control)
            return True
        if isinstance(s, ast.Raise):
            if s.exc is not None:
                self.ev(s.exc, st)
            return True
        if isinstance(s, ast.If):
            return self.branches(self.ev(s.test, st), [s.body, s.orelse], st)
        if isinstance(s, ast.While):
            self.loop(self.ev(s.test, st), s.body, st)
            self.block(s.orelse, st)
            return False
        if isinstance(s, (ast.For, ast.AsyncFor)):
            mask = self.ev(s.iter, st)
            self.bind(s.target, mask, st)
            self.loop(mask, s.body, st)
            self.block(s.orelse, st)
            return False
        if isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                mask = self.ev(item.context_expr, st)
                if item.optional_vars is not None:
                    self.bind(item.optional_vars, mask, st)
            return self.block(s.body, st)
        if isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            before = dict(st)
            left = self.block(s.body, st)
            for h in s.handlers:
                hs = dict(before)
                self.merge(hs, st)
                self.block(h.body, hs)
                self.merge(st, hs)
            if not left:
                self.block(s.orelse, st)
            return self.block(s.finalbody, st) or (left and not s.handlers)
        if isinstance(s, ast.Match):
            return self.branches(self.ev(s.subject, st), [c.body for c in s.cases], st, exhaustive=False)
        if isinstance(s, ast.Delete):
            for target in s.targets:
                if isinstance(target, ast.Name):
                    st.pop(target.id, None)
            return False
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.use(self.captured(s, st))  # a closure carries what it reads
            return False
        if isinstance(s, (ast.Break, ast.Continue)):
            self.use(self.control)  # the value decides how much of the loop runs
            return False
        if isinstance(s, ast.Assert):
            self.ev(s.test, st)
        return False

    def captured(self, node: ast.AST, st: State) -> int:
        out = 0
        for n in walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                out |= st.get(n.id, 0)
        return out

    def branches(self, test: int, bodies: list[list[ast.stmt]], st: State, exhaustive: bool = True) -> bool:
        if test and all(validation_only(b) for b in bodies):
            test = 0  # a check that only raises: validation, not a use
        self.ctrl.append(test)
        try:
            outs, left_all = [], True
            for body in bodies:
                bs = dict(st)
                left = self.block(body, bs)
                if not left:
                    outs.append(bs)
                left_all = left_all and left
            if not exhaustive:
                outs.append(dict(st))
                left_all = False
        finally:
            self.ctrl.pop()
        st.clear()
        for o in outs:
            self.merge(st, o)
        return left_all and bool(bodies)

    def loop(self, test: int, body: list[ast.stmt], st: State) -> None:
        self.ctrl.append(test if not validation_only(body) else 0)
        try:
            for _ in range(2):
                bs = dict(st)
                self.block(body, bs)
                self.merge(st, bs)
        finally:
            self.ctrl.pop()

    # expressions -------------------------------------------------------------------------------
    def ev(self, node: ast.AST | None, st: State) -> int:
        """Seeds that reach the value of `node` (and uses found inside it)."""
        if node is None:
            return 0
        if isinstance(node, ast.Name):
            mask = st.get(node.id, 0) if isinstance(node.ctx, ast.Load) else 0
            self.loaded |= mask
            return mask
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return st.get(f"self.{node.attr}", 0)
            inner = self.ev(node.value, st)
            if node.attr in METADATA:
                if self.metadata_is_use and node.attr in ("dtype", "device"):
                    self.use(inner)
                return 0
            return inner
        if isinstance(node, ast.Call):
            return self.call(node, st)
        if isinstance(node, ast.Constant):
            return 0
        if _inner_dimension(node):
            self.ev(node.value, st)
            return 0  # x.shape[1], x.size(2): a length inside each item, not the items
        if isinstance(node, ast.Lambda):
            mask = self.captured(node.body, st)
            self.use(mask)
            return mask
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            inner = dict(st)
            mask = 0
            for gen in node.generators:
                g = self.ev(gen.iter, inner)
                self.bind(gen.target, g, inner)
                mask |= g
                for cond in gen.ifs:
                    mask |= self.ev(cond, inner)
            if isinstance(node, ast.DictComp):
                mask |= self.ev(node.key, inner) | self.ev(node.value, inner)
            else:
                mask |= self.ev(node.elt, inner)
            return mask
        if isinstance(node, ast.NamedExpr):
            mask = self.ev(node.value, st)
            self.bind(node.target, mask, st)
            return mask
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            mask = self.ev(node.value, st)
            self.use(mask)
            return mask
        mask = 0
        for child in child_nodes(node):
            if isinstance(child, ast.expr):
                mask |= self.ev(child, st)
            elif isinstance(child, ast.keyword):
                mask |= self.ev(child.value, st)
            elif isinstance(child, ast.comprehension):
                mask |= self.ev(child.iter, st)
        return mask

    def call(self, node: ast.Call, st: State) -> int:
        func = node.func
        if is_dead_end(node):
            before = self.loaded
            for a in [*node.args, *(k.value for k in node.keywords)]:
                self.dead |= self.ev(a, st)
            self.loaded = before
            return 0
        args = [(i, a, self.ev(a, st)) for i, a in enumerate(node.args)]
        kwargs = [(k.arg, k.value, self.ev(k.value, st)) for k in node.keywords]
        any_arg = 0
        for *_, m in [*args, *kwargs]:
            any_arg |= m
        # locals()/vars(): a callback block hands local variables to the user's callback
        if isinstance(func, ast.Name) and func.id in ("locals", "vars") and not node.args:
            names = self.scope.callback_names
            mask = 0
            for k, v in st.items():
                if not k.startswith("self.") and (names is None or k in names):
                    mask |= v
            self.use(mask)
            return mask
        # a method on a local value (x.to(...), lst.append(v)): the result (and the receiver) carry it
        if isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name) and func.value.id == "self"):
            root = _root_name(func.value)
            if root is not None and root != "self" and root not in self.scope.imported:
                recv = self.ev(func.value, st)
                if any_arg:
                    st[root] = st.get(root, 0) | any_arg
                return recv | any_arg
        if self.mode == "taint":
            recv = self.ev(func.value, st) if isinstance(func, ast.Attribute) else self.ev(func, st)
            return any_arg | recv
        if isinstance(func, ast.Name) and func.id in PURE_BUILTINS:
            return any_arg
        # tensor math computes a value; only the value's use counts, unless the call is a
        # statement of its own (torch.manual_seed(seed))
        if node is not self.effect and self.scope.is_math(func):
            return any_arg
        callee = self.ev(func, st)  # calling a value that came in (a callback)
        self.use(callee)
        if not any_arg:
            return callee
        helper = self.scope.helper(node)
        if helper is not None:
            through = self._through_helper(helper, node, args, kwargs)
            self.use(through)
            return through | callee  # what the helper ignores does not reach its result either
        self.use(any_arg)
        return any_arg | callee

    def _through_helper(self, helper: FunctionNode, node: ast.Call, args, kwargs) -> int:
        """Seeds the helper does something with (the parameters they arrive in are used)."""
        ps = params(helper)
        bound_method = bool(ps) and ps[0].arg in ("self", "cls") and isinstance(node.func, ast.Attribute)
        positional = ps[1:] if bound_method else ps
        names = {p.arg for p in ps}
        used_params = self.scope.used_params(helper)
        out = 0
        for i, _a, m in args:
            if not m:
                continue
            if i < len(positional):
                if positional[i].arg in used_params:
                    out |= m
                else:
                    self._ignored(m, _call_name(node.func))
            elif helper.args.vararg is not None:
                out |= m
        for kw, _v, m in kwargs:
            if not m:
                continue
            if kw is None or kw not in names:
                if helper.args.kwarg is not None or kw is None:
                    out |= m
                continue
            if kw in used_params:
                out |= m
            else:
                self._ignored(m, _call_name(node.func))
        return out

    def _ignored(self, mask: int, helper: str) -> None:
        for i in range(mask.bit_length()):
            bit = 1 << i
            if mask & bit:
                self.ignored_by.setdefault(bit, helper)


def _direct_uses(fn: FunctionNode, scope: Scope) -> set[str]:
    """Names never rebound in `fn` that go straight into a call that uses its arguments (a
    component, an unknown function) or straight into a return: used, with no flow to follow."""
    key = ("direct", id(fn), id(scope.cls))
    if key in scope.memo:
        return scope.memo[key]
    stored, direct = set(), set()
    for node in scope.nodes(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            stored.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not fn:
            stored |= {a.arg for a in walk(node.args) if isinstance(a, ast.arg)}
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
            direct.add(node.value.id)
        elif isinstance(node, ast.Call):
            func = node.func
            if is_dead_end(node) or scope.is_math(func) or scope.helper(node) is not None:
                continue
            if isinstance(func, ast.Name) and func.id in (*PURE_BUILTINS, "locals", "vars"):
                continue
            root = _root_name(func.value) if isinstance(func, ast.Attribute) else None
            if isinstance(func, ast.Attribute) and not (root == "self" or root in scope.imported):
                continue  # a method of a local value: its result carries the argument, follow it
            direct |= {a.id for a in [*node.args, *(k.value for k in node.keywords)] if isinstance(a, ast.Name)}
    scope.memo[key] = direct - stored
    return scope.memo[key]


def uses(fn: FunctionNode, names: list[str], scope: Scope | None = None, metadata_is_use: bool = False) -> dict[str, Verdict]:
    """Does the value of each of `fn`'s parameters `names` do anything?"""
    scope = scope or Scope()
    direct = _direct_uses(fn, scope)
    out = {n: Verdict(True) for n in names if n in direct}
    rest = [n for n in names if n not in out]
    if rest:
        flow = Flow(fn, scope)
        flow.metadata_is_use = metadata_is_use
        out.update(flow.verdicts(rest))
    return out


def local_uses(fn: FunctionNode, names: list[str], scope: Scope | None = None) -> dict[str, Verdict]:
    """Does the value a call assigns to each local in `names` (a mask from encode_prompt) do anything?"""
    flow = Flow(fn, scope)
    flow.seed_assign = {n: 1 << i for i, n in enumerate(names)}
    return flow.verdicts(names)
