"""libcst codemods of the structural port: einops calls to torch, SDPA to dispatch_attention_fn,
environment reads to the default the sandboxed reference used, import-time compilation left out
(compile_settings.py).

Each codemod changes layout code only; the numbers it computes are the reference's. What it
cannot translate exactly stays in place and is reported with its line, never approximated.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass

import libcst as cst
import libcst.matchers as m
from libcst.metadata import MetadataWrapper, PositionProvider

from agent.porting.compile_settings import drop_import_time_compile
from agent.porting.config_capture import insert_after_imports
from agent.porting.einops_to_torch import Untranslatable, translate

EINOPS_FUNCS = {"rearrange", "repeat", "reduce"}
SDPA_PARAMS = ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]


@dataclass
class LeftUndone:
    line: int
    what: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CallEvidence:
    """What the probe's forward on the parity inputs executed in one reference file: its lines,
    and per line the ranks of the tensors `scaled_dot_product_attention` received there."""

    executed: set[int]
    attention_ranks: dict[int, list[int]]

    @classmethod
    def for_file(cls, call_sites: dict, rel: str) -> CallEvidence:
        ranks = {}
        for site, values in call_sites.get("attention_ranks", {}).items():
            path, _, line = site.rpartition(":")
            if path == rel:
                ranks[int(line)] = list(values)
        return cls(set(call_sites.get("executed", {}).get(rel, [])), ranks)


NOT_EXECUTED = "not executed by the parity inputs, so parity could not check a rewrite: left as it is"


@dataclass
class CodemodResult:
    code: str
    converted: list[dict]
    left: list[LeftUndone]
    dropped_imports: list[str]


def _string_literal(node: cst.BaseExpression) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


class _EinopsImports(cst.CSTVisitor):
    """Which local names refer to einops functions or the einops module, and to torch's
    functional module or its scaled_dot_product_attention (a reference's own function of that
    name is not torch's)."""

    def __init__(self) -> None:
        self.functions: dict[str, str] = {}  # local name -> einops function
        self.others: dict[str, str] = {}  # local name -> einops function without a codemod (pack, ...)
        self.modules: set[str] = set()
        self.layers: dict[str, str] = {}  # local name -> Rearrange | Reduce | ...
        self.functional: set[str] = {"torch.nn.functional"}  # dotted names of torch.nn.functional
        self.sdpa: set[str] = set()  # local names of torch's scaled_dot_product_attention
        self.os_modules: set[str] = set()  # local names of the os module

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name)
            if name == "einops":
                self.modules.add(alias.evaluated_alias or "einops")
            elif name == "torch.nn.functional" and alias.asname:
                self.functional.add(alias.evaluated_alias)
            elif name == "torch.nn" and alias.asname:
                self.functional.add(f"{alias.evaluated_alias}.functional")
            elif name == "os":
                self.os_modules.add(alias.evaluated_alias or "os")

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = cst.helpers.get_full_name_for_node(node.module) if node.module else ""
        if not isinstance(node.names, cst.ImportStar) and module in ("torch", "torch.nn", "torch.nn.functional"):
            for alias in node.names:
                local = alias.evaluated_alias or alias.name.value
                if module == "torch.nn.functional" and alias.name.value == "scaled_dot_product_attention":
                    self.sdpa.add(local)
                elif module == "torch.nn" and alias.name.value == "functional":
                    self.functional.add(local)
                elif module == "torch" and alias.name.value == "nn":
                    self.functional.add(f"{local}.functional")
        if isinstance(node.names, cst.ImportStar) or not module.startswith("einops"):
            return
        for alias in node.names:
            name = alias.name.value
            local = alias.evaluated_alias or name
            if module == "einops" and name in EINOPS_FUNCS:
                self.functions[local] = name
            elif module == "einops":
                self.others[local] = name
            elif module.startswith("einops.layers"):
                self.layers[local] = name


class _Rewrite(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, imports: _EinopsImports, sdpa: bool, evidence: CallEvidence | None = None):
        self.imports = imports
        self.sdpa = sdpa
        self.evidence = evidence
        self.converted: list[dict] = []
        self.left: list[LeftUndone] = []
        self.used_dispatch = False
        self.layer_classes: dict[tuple, tuple[str, str]] = {}  # (kind, pattern, reduction, sizes) -> (name, code)

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _einops_function(self, func: cst.BaseExpression) -> str | None:
        if isinstance(func, cst.Name):
            return self.imports.functions.get(func.value)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in self.imports.modules:
            return func.attr.value if func.attr.value in EINOPS_FUNCS else None
        return None

    def _unverified(self, original: cst.Call, what: str) -> bool:
        """A call the parity run never executes keeps its reference form (and is listed)."""
        if self.evidence is None or self._line(original) in self.evidence.executed:
            return False
        self.left.append(LeftUndone(self._line(original), what, NOT_EXECUTED))
        return True

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        kind = self._einops_function(original.func)
        if kind and self._unverified(original, f"einops.{kind}"):
            return updated
        if isinstance(original.func, cst.Name) and original.func.value in self.imports.layers and self._unverified(original, f"einops layer {original.func.value}(...)"):
            return updated
        if kind:
            return self._einops(original, updated, kind)
        if isinstance(original.func, cst.Name) and original.func.value in self.imports.layers:
            return self._layer(original, updated, self.imports.layers[original.func.value])
        other = self._other_einops(original.func)
        if other:
            self.left.append(LeftUndone(self._line(original), f"einops.{other}", "no exact torch codemod for this einops function"))
            return updated
        if self._is_environment_read(original):
            return self._environment_default(original, updated)
        if self.sdpa and self._is_torch_sdpa(original.func):
            if self._unverified(original, "scaled_dot_product_attention"):
                return updated
            return self._sdpa(original, updated)
        return updated

    def _is_environment_read(self, call: cst.Call) -> bool:
        name = cst.helpers.get_full_name_for_node(call.func) or ""
        module, _, rest = name.partition(".")
        return module in self.imports.os_modules and rest in ("environ.get", "getenv")

    def _environment_default(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        """`os.environ.get("NAME", default)` becomes `default`: a model file may not read the
        environment, and the sandboxed reference ran with NAME unset, so the default is the value
        parity measured. A read without a literal name or default stays (and the T006 rule
        reports it)."""
        line = self._line(original)
        args = updated.args
        if len(args) != 2 or any(a.star or a.keyword for a in args) or _string_literal(args[0].value) is None:
            self.left.append(LeftUndone(line, "environment read", "no literal variable name and default: left as it is"))
            return updated
        default = args[1].value
        code = cst.Module([]).code_for_node(default)
        try:
            ast.literal_eval(code)
        except (ValueError, SyntaxError):
            self.left.append(LeftUndone(line, "environment read", "the default is not a literal: left as it is"))
            return updated
        self.converted.append({"line": line, "from": f"environment variable {_string_literal(args[0].value)}", "to": code})
        return default

    def _is_torch_sdpa(self, func: cst.BaseExpression) -> bool:
        if isinstance(func, cst.Name):
            return func.value in self.imports.sdpa
        return (m.matches(func, m.Attribute(attr=m.Name("scaled_dot_product_attention")))
                and cst.helpers.get_full_name_for_node(func.value) in self.imports.functional)

    def _other_einops(self, func: cst.BaseExpression) -> str | None:
        if isinstance(func, cst.Name):
            return self.imports.others.get(func.value)
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value in self.imports.modules:
            return func.attr.value if func.attr.value not in EINOPS_FUNCS else None
        return None

    def _layer(self, original: cst.Call, updated: cst.Call, layer: str) -> cst.BaseExpression:
        """`Rearrange(pattern, **sizes)` / `Reduce(pattern, reduction, **sizes)` become small
        generated modules whose forward is the exact torch translation (no parameters, so
        the state dict and module names do not change)."""
        line = self._line(original)
        kind = {"Rearrange": "rearrange", "Reduce": "reduce"}.get(layer)
        positional = [a for a in updated.args if a.keyword is None and not a.star]
        keywords = {a.keyword.value: a.value for a in updated.args if a.keyword is not None}
        pattern = _string_literal(positional[0].value) if positional else None
        if kind is None or pattern is None or any(a.star for a in updated.args):
            self.left.append(LeftUndone(line, f"einops layer {layer}(...)", "non-literal pattern or unsupported layer"))
            return updated
        reduction = None
        if kind == "reduce":
            node = positional[1].value if len(positional) > 1 else keywords.pop("reduction", None)
            reduction = _string_literal(node) if node is not None else None
        size_names = sorted(keywords)
        try:
            body = translate(kind, pattern, "x", {n: f"self.{n}" for n in size_names}, reduction)
        except Untranslatable as exc:
            self.left.append(LeftUndone(line, f"einops layer {layer}({pattern!r})", str(exc)))
            return updated
        key = (kind, pattern, reduction, tuple(size_names))
        if key not in self.layer_classes:
            name = f"{layer}Layer{len(self.layer_classes) + 1}"
            init = ""
            if size_names:
                assigns = "\n".join(f"        self.{n} = {n}" for n in size_names)
                init = f"    def __init__(self, {', '.join(size_names)}):\n        super().__init__()\n{assigns}\n\n"
            doc = f"einops {layer}({pattern!r}{', ' + repr(reduction) if reduction else ''}) as exact torch operations."
            self.layer_classes[key] = (name, f'class {name}(torch.nn.Module):\n    """{doc}"""\n\n{init}    def forward(self, x):\n        return {body}\n')
        name = self.layer_classes[key][0]
        args = ", ".join(f"{n}={cst.Module([]).code_for_node(keywords[n])}" for n in size_names)
        self.converted.append({"line": line, "from": f"{layer}({pattern!r})", "to": f"{name}({args})"})
        return cst.parse_expression(f"{name}({args})")

    def _einops(self, original: cst.Call, updated: cst.Call, kind: str) -> cst.BaseExpression:
        line = self._line(original)
        positional = [a for a in updated.args if a.keyword is None and a.star == ""]
        keywords = {a.keyword.value: a for a in updated.args if a.keyword is not None}
        if any(a.star for a in updated.args):
            self.left.append(LeftUndone(line, f"einops.{kind}", "star-arguments"))
            return updated
        if len(positional) < 2:
            self.left.append(LeftUndone(line, f"einops.{kind}", "pattern is not the second positional argument"))
            return updated
        pattern = _string_literal(positional[1].value)
        if pattern is None:
            self.left.append(LeftUndone(line, f"einops.{kind}", "non-literal pattern"))
            return updated
        reduction = None
        if kind == "reduce":
            node = positional[2].value if len(positional) > 2 else keywords.pop("reduction").value if "reduction" in keywords else None
            reduction = _string_literal(node) if node is not None else None
            if reduction is None:
                self.left.append(LeftUndone(line, f"einops.reduce({pattern!r})", "non-literal or missing reduction"))
                return updated
        tensor = cst.Module([]).code_for_node(positional[0].value)
        sizes = {k: cst.Module([]).code_for_node(a.value) for k, a in keywords.items()}
        try:
            code = translate(kind, pattern, tensor, sizes, reduction)
        except Untranslatable as exc:
            self.left.append(LeftUndone(line, f"einops.{kind}({pattern!r})", str(exc)))
            return updated
        self.converted.append({"line": line, "from": f"{kind}({pattern!r})", "to": code})
        return cst.parse_expression(code)

    def _sdpa(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        """SDPA takes (batch, heads, seq, dim); dispatch_attention_fn takes (batch, seq, heads, dim).
        The transposes are right only for 4-D tensors: with evidence, every call seen at this line
        must have had 4-D query, key and value (a windowed 6-D call stays as it is)."""
        line = self._line(original)
        if self.evidence is not None:
            ranks = self.evidence.attention_ranks.get(line, [])
            if ranks != [4]:
                seen = f"query/key/value were {', '.join(f'{r}-D' for r in ranks)}" if ranks else "the line ran but recorded no attention call"
                self.left.append(LeftUndone(line, "scaled_dot_product_attention", f"{seen}, not 4-D (batch, heads, tokens, dim): left as it is"))
                return updated
        if any(a.star for a in updated.args):
            self.left.append(LeftUndone(line, "scaled_dot_product_attention", "star-arguments"))
            return updated
        named: dict[str, cst.BaseExpression] = {}
        for i, arg in enumerate(updated.args):
            key = arg.keyword.value if arg.keyword else (SDPA_PARAMS[i] if i < len(SDPA_PARAMS) else None)
            if key is None or key not in SDPA_PARAMS:
                self.left.append(LeftUndone(line, "scaled_dot_product_attention", f"unknown argument {key}"))
                return updated
            named[key] = arg.value
        if not {"query", "key", "value"} <= named.keys():
            self.left.append(LeftUndone(line, "scaled_dot_product_attention", "query, key or value missing"))
            return updated
        src = {k: cst.Module([]).code_for_node(v) for k, v in named.items()}
        qkv = ", ".join(f"{_paren(src[k])}.transpose(1, 2)" for k in ("query", "key", "value"))
        extra = "".join(f", {k}={src[k]}" for k in SDPA_PARAMS[3:] if k in src)
        code = f"dispatch_attention_fn({qkv}{extra}).transpose(1, 2)"
        self.used_dispatch = True
        self.converted.append({"line": line, "from": "scaled_dot_product_attention", "to": code})
        return cst.parse_expression(code)


def _paren(code: str) -> str:
    return code if code.replace(".", "").replace("_", "").isalnum() else f"({code})"


def _bound_name(alias: cst.ImportAlias) -> str:
    """The name an import binds: its alias, or the first part of `import a.b`."""
    return alias.evaluated_alias or cst.helpers.get_full_name_for_node(alias.name).split(".")[0]


class _DropImports(cst.CSTTransformer):
    """Drop module-level import aliases whose names no longer appear in the module."""

    def __init__(self, unused: set[str]):
        self.unused = unused

    def leave_ImportFrom(self, original, updated):
        module = cst.helpers.get_full_name_for_node(updated.module) if updated.module else ""
        if isinstance(updated.names, cst.ImportStar) or module == "__future__":
            return updated
        return self._keep_used(updated, lambda a: a.evaluated_alias or a.name.value)

    def leave_Import(self, original, updated):
        return self._keep_used(updated, _bound_name)

    def _keep_used(self, node, bound_name):
        keep = [a for a in node.names if bound_name(a) not in self.unused]
        if not keep:
            return cst.RemovalSentinel.REMOVE
        if len(keep) != len(node.names):
            keep[-1] = keep[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return node.with_changes(names=keep)
        return node


class _NameUses(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self._in_import = 0

    def visit_Import(self, node) -> None:
        self._in_import += 1

    def leave_Import(self, node) -> None:
        self._in_import -= 1

    def visit_ImportFrom(self, node) -> None:
        self._in_import += 1

    def leave_ImportFrom(self, node) -> None:
        self._in_import -= 1

    def visit_Name(self, node: cst.Name) -> None:
        if not self._in_import:
            self.names.add(node.value)


class _ImportedNames(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    @classmethod
    def of(cls, module: cst.Module) -> set[str]:
        visitor = cls()
        module.visit(visitor)
        return visitor.names

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        self.names.add(_bound_name(node) if node.asname or "." in (cst.helpers.get_full_name_for_node(node.name) or "") else node.evaluated_alias or node.name.value)


def _unused_imports(module: cst.Module) -> set[str]:
    imported, uses = _ImportedNames(), _NameUses()
    module.visit(imported)
    module.visit(uses)
    return {n for n in imported.names if n not in uses.names}


def drop_unused_imports(module: cst.Module, keep: set[str] = frozenset()) -> tuple[cst.Module, list[str]]:
    """Remove imports nothing in the module uses any more (after the codemods removed their
    uses), except the names in `keep`."""
    unused = _unused_imports(module) - set(keep)
    return (module.visit(_DropImports(unused)) if unused else module), sorted(unused)


def port_codemods(source: str, dispatch_import: str, evidence: CallEvidence | None = None) -> CodemodResult:
    """Apply the einops and attention codemods to `source` (a module's code). With `evidence`
    (what the parity inputs execute in this file), only executed calls are rewritten, and
    attention only where it was called with 4-D tensors."""
    module = cst.parse_module(source)
    unused_before = _unused_imports(module)  # re-exports of a package __init__ stay: others import them
    imports = _EinopsImports()
    module.visit(imports)
    _, uncompiled = drop_import_time_compile(module)  # recorded at the reference's own line numbers
    rewrite = _Rewrite(imports, sdpa=True, evidence=evidence)
    module = MetadataWrapper(module).visit(rewrite)
    module, _ = drop_import_time_compile(module)
    if rewrite.layer_classes:
        module = insert_after_imports(module, "\n\n".join(code for _, code in rewrite.layer_classes.values()))
    module, dropped = drop_unused_imports(module, keep=unused_before)
    if rewrite.layer_classes and "torch" not in _ImportedNames.of(module):
        module = insert_after_imports(module, "import torch\n")
    if rewrite.used_dispatch:
        module = insert_after_imports(module, dispatch_import)
    return CodemodResult(code=module.code, converted=rewrite.converted + uncompiled, left=rewrite.left, dropped_imports=dropped)
