"""Codemod: compilation the reference sets up is left out of the port.

Research code often compiles at import (`f = torch.compile(g)`, `@torch.compile`) or on first
use (a wrapper calling `torch.compile` lazily), and tunes the compiler's global settings
(`torch._dynamo.config.cache_size_limit = ...`). A diffusers model file may not change global
state at import (rule T008, T007 for the settings), and diffusers leaves compilation to the user
(`model.compile()`). Dropping it changes no number the port
computes: every parity side runs with TorchDynamo disabled, so the reference that parity
measured already ran these functions eagerly. Each removal is listed with its line.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

COMPILER_SETTINGS = ("torch._dynamo.config.", "torch._inductor.config.")
COMPILE = "torch.compile"


class _TorchNames(cst.CSTVisitor):
    """Local names bound to torch or to its compiler modules, as dotted torch names."""

    def __init__(self) -> None:
        self.bound: dict[str, str] = {}

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = cst.helpers.get_full_name_for_node(alias.name) or ""
            if name == "torch" or name.startswith("torch."):
                if alias.asname:
                    self.bound[alias.evaluated_alias] = name
                else:
                    self.bound["torch"] = "torch"

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = cst.helpers.get_full_name_for_node(node.module) if node.module and not node.relative else ""
        if isinstance(node.names, cst.ImportStar) or not (module == "torch" or module.startswith("torch.")):
            return
        for alias in node.names:
            self.bound[alias.evaluated_alias or alias.name.value] = f"{module}.{alias.name.value}"


class _DropCompile(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, names: dict[str, str]):
        self.names = names
        self.removed: list[dict] = []
        self.depth = 0  # function bodies entered: only what runs at import is touched

    def _qualified(self, node: cst.BaseExpression) -> str:
        full = cst.helpers.get_full_name_for_node(node) or ""
        head, dot, rest = full.partition(".")
        return f"{self.names[head]}{dot}{rest}" if head in self.names else ""

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _record(self, node: cst.CSTNode, what: str, to: str) -> None:
        self.removed.append({"line": self._line(node), "from": what, "to": to})

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.depth += 1

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.depth -= 1
        if self.depth:
            return updated
        kept = []
        for deco, new in zip(original.decorators, updated.decorators, strict=True):
            target = deco.decorator.func if isinstance(deco.decorator, cst.Call) else deco.decorator
            if self._qualified(target) == COMPILE:
                self._record(deco, f"@{cst.Module([]).code_for_node(deco.decorator)} on {original.name.value}",
                             "removed: diffusers leaves compilation to the user")
            else:
                kept.append(new)
        return updated.with_changes(decorators=kept) if len(kept) != len(updated.decorators) else updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        """`torch.compile(g, ...)` becomes `g` wherever it is: at import, and also inside a function,
        where it would compile on the first call (minutes on CPU in every fresh process) what
        parity measured eagerly."""
        if self._qualified(original.func) != COMPILE:
            return updated
        first = updated.args[0] if updated.args else None
        if first is None or first.keyword or first.star:
            return updated
        self._record(original, cst.Module([]).code_for_node(original), f"{cst.Module([]).code_for_node(first.value)}: compilation is left to the user")
        return first.value

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        if self.depth:
            return updated
        body = []
        for small in updated.body:
            targets = []
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
                targets = [small.target]
            if targets and all(self._qualified(t).startswith(COMPILER_SETTINGS) for t in targets):
                self._record(original, cst.Module([]).code_for_node(small).strip(), "removed: a compiler setting, global state a model file may not change")
            else:
                body.append(small)
        if not body:
            return cst.RemovalSentinel.REMOVE
        return updated.with_changes(body=body) if len(body) != len(updated.body) else updated

    def leave_If(self, original: cst.If, updated: cst.If):
        return _emptied(updated, updated.body, keep=updated.orelse is not None) if not self.depth else updated

    def leave_Try(self, original: cst.Try, updated: cst.Try):
        if self.depth or _statements(updated.body):
            return updated
        rest = [*(_statements(updated.orelse.body) if updated.orelse else []), *(_statements(updated.finalbody.body) if updated.finalbody else [])]
        if not rest:
            return cst.RemovalSentinel.REMOVE
        return cst.FlattenSentinel(rest)  # an empty try raises nothing: its handlers never ran


def _statements(block: cst.BaseSuite | None) -> list:
    return list(block.body) if block is not None else []


def _emptied(node: cst.If, body: cst.BaseSuite, keep: bool):
    """An `if` whose body lost its every statement goes too (when it has no else branch);
    with an else branch the body gets a `pass`."""
    if _statements(body):
        return node
    if not keep:
        return cst.RemovalSentinel.REMOVE
    return node.with_changes(body=cst.IndentedBlock(body=[cst.SimpleStatementLine([cst.Pass()])]))


def drop_import_time_compile(module: cst.Module) -> tuple[cst.Module, list[dict]]:
    """The module without import-time compilation or compiler settings, and what was removed."""
    names = _TorchNames()
    module.visit(names)
    if not names.bound:
        return module, []
    transformer = _DropCompile(names.bound)
    out = MetadataWrapper(module).visit(transformer)
    if transformer.removed:
        out = out.visit(_DropCompilerImports(out.code))
    return out, transformer.removed


class _DropCompilerImports(cst.CSTTransformer):
    """`import torch._dynamo` goes once nothing else in the file mentions the compiler module
    (the import binds `torch`, which the rest of the file keeps using through `import torch`)."""

    def __init__(self, code: str):
        self.code = code

    def leave_Import(self, original: cst.Import, updated: cst.Import):
        kept = [a for a in updated.names if not self._unused_compiler_module(a)]
        if len(kept) == len(updated.names):
            return updated
        if not kept:
            return cst.RemovalSentinel.REMOVE
        return updated.with_changes(names=[a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in kept])

    def _unused_compiler_module(self, alias: cst.ImportAlias) -> bool:
        name = cst.helpers.get_full_name_for_node(alias.name) or ""
        if alias.asname or name not in ("torch._dynamo", "torch._inductor"):
            return False
        return self.code.count(name) == 1  # only the import itself
