"""Turn the reference's top-level nn.Module into a diffusers model class.

The class gets `ModelMixin` and `ConfigMixin` in place of `nn.Module`, `@register_to_config` on
`__init__` (so every constructor argument is saved in config.json), and the diffusers name;
every other reference to the old name in the file follows the rename.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

TORCH_MODULE = m.Name("Module") | m.Attribute(attr=m.Name("Module"))

STANDALONE_IMPORTS = (
    "from diffusers.configuration_utils import ConfigMixin, register_to_config\n"
    "from diffusers.models.modeling_utils import ModelMixin\n"
)
IN_TREE_IMPORTS = (
    "from ...configuration_utils import ConfigMixin, register_to_config\n"
    "from ..modeling_utils import ModelMixin\n"
)


# ModelMixin / ConfigMixin define these as read-only properties; a reference that assigns
# self.dtype = ... (ldm's UNet does) must keep its own attribute under another name.
MIXIN_PROPERTIES = {"dtype", "device", "config"}


class _SelfAttributes(cst.CSTVisitor):
    def __init__(self) -> None:
        self.assigned: set[str] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        t = node.target
        if m.matches(t, m.Attribute(value=m.Name("self"))):
            self.assigned.add(t.attr.value)


class _RenameSelfAttribute(cst.CSTTransformer):
    def __init__(self, renames: dict[str, str]):
        self.renames = renames

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        if m.matches(updated.value, m.Name("self")) and updated.attr.value in self.renames:
            return updated.with_changes(attr=cst.Name(self.renames[updated.attr.value]))
        return updated


def _prepend_to_body(fn: cst.FunctionDef, lines: list[str]) -> cst.FunctionDef:
    """`lines` become the first statements of `fn` (after its docstring)."""
    if not lines:
        return fn
    body = list(fn.body.body)
    at = 1 if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])) else 0
    return fn.with_changes(body=fn.body.with_changes(body=[*body[:at], *map(cst.parse_statement, lines), *body[at:]]))


def _rename_arguments(fn: cst.FunctionDef, renames: dict[str, str]) -> cst.FunctionDef:
    """The port's argument takes the new name (a config key must not hide a submodule of the same
    name); the body first binds the reference's name to it, so the reference's code is unchanged."""
    present = [p.name.value for p in [*fn.params.params, *fn.params.kwonly_params] if p.name.value in renames]
    if not present:
        return fn

    def rename(p: cst.Param) -> cst.Param:
        return p.with_changes(name=cst.Name(renames[p.name.value])) if p.name.value in renames else p

    params = fn.params.with_changes(params=[rename(p) for p in fn.params.params], kwonly_params=[rename(p) for p in fn.params.kwonly_params])
    lines = [f"{n} = {renames[n]}  # ModelMixin answers self.{n} with a config key of that name, not the submodule\n" for n in present]
    return _prepend_to_body(fn.with_changes(params=params), lines)


def _tuple_normalisation(fn: cst.FunctionDef, tuple_args: set[str]) -> cst.FunctionDef:
    """config.json has no tuples: from_pretrained passes lists where the reference expects tuples."""
    names = [p.name.value for p in [*fn.params.params, *fn.params.kwonly_params] if p.name.value in tuple_args]
    if not names:
        return fn
    lines = [cst.parse_statement(f"{n} = tuple({n}) if isinstance({n}, list) else {n}  # config.json stores tuples as lists\n") for n in names]
    body = list(fn.body.body)
    at = 0
    if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])):
        at = 1  # after the docstring
    return fn.with_changes(body=fn.body.with_changes(body=[*body[:at], *lines, *body[at:]]))


def _flatten_config_object(fn: cst.FunctionDef, obj: dict, defaults: dict) -> cst.FunctionDef:
    """`def __init__(self, config)` becomes named arguments, one per config key; the body first
    rebuilds `config` from them, so every later use reads exactly what it read before."""
    params = []
    for p in fn.params.params:
        if p.name.value == obj["param"]:
            tight = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
            params += [cst.Param(cst.Name(k), default=cst.parse_expression(repr(defaults[k])), equal=tight) for k in obj["keys"]]
        else:
            params.append(p)
    params = [p.with_changes(comma=cst.MaybeSentinel.DEFAULT) for p in params]
    fields = ", ".join(f"{k}={k}" for k in obj["keys"])
    build = f"dict({fields})" if obj["kind"] == "mapping" else f"SimpleNamespace({fields})"
    line = cst.parse_statement(f"{obj['param']} = {build}  # the reference takes one config object\n")
    body = list(fn.body.body)
    at = 1 if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])) else 0
    return fn.with_changes(
        params=fn.params.with_changes(params=params), body=fn.body.with_changes(body=[*body[:at], line, *body[at:]])
    )


def _flatten_passthrough(fn: cst.FunctionDef, passthrough: dict, defaults: dict) -> cst.FunctionDef:
    """`def __init__(self, dim, **kwargs)` whose config.json keys reach the model through
    **kwargs: each key becomes a named argument (saved by register_to_config, which from_pretrained
    needs: it passes only named arguments), and the body first rebuilds the dict it passed on."""
    tight = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    new = [cst.Param(cst.Name(k), default=cst.parse_expression(repr(defaults[k])), equal=tight) for k in passthrough["keys"]]
    params = fn.params
    if isinstance(params.star_arg, cst.Param):
        params = params.with_changes(kwonly_params=[*params.kwonly_params, *new], star_kwarg=None)
    else:
        params = params.with_changes(params=[*params.params, *new], star_kwarg=None)
    params = params.with_changes(
        params=[p.with_changes(comma=cst.MaybeSentinel.DEFAULT) for p in params.params],
        kwonly_params=[p.with_changes(comma=cst.MaybeSentinel.DEFAULT) for p in params.kwonly_params],
    )
    fields = ", ".join(f"{k}={k}" for k in passthrough["keys"])
    line = cst.parse_statement(f"{passthrough['param']} = dict({fields})  # passed on as **{passthrough['param']}, as the reference does\n")
    body = list(fn.body.body)
    at = 1 if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(m.SimpleString() | m.ConcatenatedString())])) else 0
    return fn.with_changes(params=params, body=fn.body.with_changes(body=[*body[:at], line, *body[at:]]))


class _CaptureConfig(cst.CSTTransformer):
    def __init__(
        self, old: str, new: str, tuple_args: set[str], config_object: dict | None = None, defaults: dict | None = None,
        module_bases: set[str] | None = None, passthrough: dict | None = None, init_lines: tuple[str, ...] | list[str] = (),
        renames: dict[str, str] | None = None,
    ):
        self.old, self.new = old, new
        self.init_lines = list(init_lines)
        self.renames = dict(renames or {})
        self.passthrough = passthrough
        self.module_bases = module_bases or set()
        self.tuple_args = tuple_args
        self.config_object = config_object
        self.defaults = defaults or {}
        self.found = False
        self.renamed_attributes: dict[str, str] = {}

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if original.name.value != self.old:
            return updated
        self.found = True
        bases = [b for b in updated.bases if not m.matches(b.value, TORCH_MODULE)]
        mixins = [cst.Arg(cst.Name("ModelMixin")), cst.Arg(cst.Name("ConfigMixin"))]
        if any(_base_name(b.value) in self.module_bases for b in bases):
            # A reference module as base: it comes first, so the class's super().__init__(...)
            # still reaches it, and its own super().__init__() reaches ModelMixin, then nn.Module.
            bases = [*bases, *mixins]
        else:
            bases = [*mixins, *bases]
        bases = [b.with_changes(comma=cst.MaybeSentinel.DEFAULT) for b in bases]
        body = []
        for stmt in updated.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
                if not any(m.matches(d.decorator, m.Name("register_to_config")) for d in stmt.decorators):
                    stmt = stmt.with_changes(decorators=[cst.Decorator(cst.Name("register_to_config")), *stmt.decorators])
                stmt = _tuple_normalisation(stmt, self.tuple_args)
                if self.config_object:
                    stmt = _flatten_config_object(stmt, self.config_object, self.defaults)
                if self.passthrough:
                    stmt = _flatten_passthrough(stmt, self.passthrough, self.defaults)
                stmt = _prepend_to_body(stmt, self.init_lines)
                stmt = _rename_arguments(stmt, self.renames)
            body.append(stmt)
        updated = updated.with_changes(bases=bases, body=updated.body.with_changes(body=body))
        assigned = _SelfAttributes()
        updated.visit(assigned)
        clashes = {a: f"reference_{a}" for a in sorted(assigned.assigned & MIXIN_PROPERTIES)}
        if clashes:
            self.renamed_attributes.update(clashes)
            updated = updated.visit(_RenameSelfAttribute(clashes))
        return updated

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.new) if updated.value == self.old else updated


def _rename_in_ancestors(module: cst.Module, top: str, renamed: dict[str, str]) -> cst.Module:
    """Reference base classes of the model class share its `self`: an attribute that clashes
    with a mixin property is renamed in them too."""
    classes = {s.name.value: s for s in module.body if isinstance(s, cst.ClassDef)}
    ancestors, frontier = set(), [top]
    while frontier:
        current = frontier.pop()
        for b in classes[current].bases if current in classes else []:
            name = _base_name(b.value)
            if name in classes and name not in ancestors and name != top:
                ancestors.add(name)
                frontier.append(name)
    if not ancestors:
        return module
    for name in ancestors:
        assigned = _SelfAttributes()
        classes[name].visit(assigned)
        for a in sorted(assigned.assigned & MIXIN_PROPERTIES):
            renamed.setdefault(a, f"reference_{a}")
    if not renamed:
        return module
    body = [s.visit(_RenameSelfAttribute(renamed)) if isinstance(s, cst.ClassDef) and s.name.value in ancestors | {top} else s for s in module.body]
    return module.with_changes(body=body)


def _base_name(node: cst.BaseExpression) -> str:
    return (cst.helpers.get_full_name_for_node(node) or "").split(".")[-1]


def insert_after_imports(module: cst.Module, code: str) -> cst.Module:
    body = list(module.body)
    last_import = -1
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
            last_import = i
    parsed = cst.parse_module(code)
    new = list(parsed.body)
    if new and parsed.header:  # a leading comment belongs to the first inserted statement
        new[0] = new[0].with_changes(leading_lines=[*parsed.header, *new[0].leading_lines])
    return module.with_changes(body=[*body[: last_import + 1], *new, *body[last_import + 1:]])


def capture_config(
    source: str,
    reference_class: str,
    class_name: str,
    in_tree: bool,
    tuple_args: set[str] | None = None,
    config_object: dict | None = None,
    defaults: dict | None = None,
    module_bases: set[str] | None = None,
    passthrough: dict | None = None,
    init_lines: tuple[str, ...] | list[str] = (),
    renames: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """`source` with `reference_class` turned into the diffusers model `class_name`, and the
    self-attributes renamed because they clash with ModelMixin properties. With `config_object`
    ({param, kind, keys}) the one config argument becomes named arguments (`defaults` per key);
    with `passthrough` ({param, keys}) so do the keys the reference takes through **param.
    `module_bases`: reference nn.Module classes, which stay before the mixins when the class
    subclasses one (so its super().__init__ keeps reaching them). `init_lines` open `__init__`
    (after the argument normalisation above); `renames` (reference argument -> the port's) rename
    arguments of `__init__`, whose body first binds the reference's names."""
    module = cst.parse_module(source)
    transformer = _CaptureConfig(reference_class, class_name, set(tuple_args or ()), config_object, defaults, module_bases, passthrough, init_lines, renames)
    module = module.visit(transformer)
    if not transformer.found:
        raise ValueError(f"class {reference_class} not found at the top level of the reference file")
    module = _rename_in_ancestors(module, class_name, transformer.renamed_attributes)
    module = insert_after_imports(module, IN_TREE_IMPORTS if in_tree else STANDALONE_IMPORTS)
    if config_object and config_object["kind"] != "mapping":
        module = insert_after_imports(module, "from types import SimpleNamespace\n")
    return module.code, transformer.renamed_attributes
