"""Research leftovers out of the port: `print` calls, `assert`s (a ValueError in constructors and
the model's forward, where a user's bad argument arrives; dropped inside blocks, where they only
re-check what construction guaranteed), runtime conversions of research config types (omegaconf
ListConfig), torch version checks diffusers' own minimum makes constant, and module-level
functions and classes the model never reaches.

Every removal is listed; what is not provably a leftover is left and listed with why.
"""

from __future__ import annotations

import re

import libcst as cst
import libcst.matchers as m
from libcst.metadata import MetadataWrapper, PositionProvider

from agent.porting.codemods import drop_unused_imports
from agent.porting.conventions.cstutil import code, top_class
from agent.porting.conventions.report import GroupReport
from agent.porting.conventions.target import Target

RESEARCH_CONFIG_PACKAGES = ("omegaconf", "hydra")
# diffusers' attention dispatch needs torch 2.0 (scaled_dot_product_attention): a check against
# an older version is always true in a diffusers install.
MIN_TORCH = (2, 0)
# calls an assert test may make and still be a plain consistency check
_PURE_CALLS = {"len", "isinstance", "hasattr", "all", "any", "tuple", "list", "int", "dim", "size", "numel", "map", "range", "type"}




def _negate(test: cst.BaseExpression) -> cst.BaseExpression:
    """`not test`, written the simple way where that is exactly the same."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return test.expression.with_changes(lpar=[], rpar=[]) if not isinstance(test.expression, (cst.BooleanOperation, cst.IfExp)) else test.expression
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        op = test.comparisons[0].operator
        flipped = {cst.Is: cst.IsNot, cst.IsNot: cst.Is, cst.In: cst.NotIn, cst.NotIn: cst.In, cst.Equal: cst.NotEqual, cst.NotEqual: cst.Equal}.get(type(op))
        if flipped is not None:
            return test.with_changes(comparisons=[test.comparisons[0].with_changes(operator=flipped())], lpar=[], rpar=[])
    if isinstance(test, (cst.BooleanOperation, cst.IfExp, cst.Lambda, cst.NamedExpr)):
        test = test.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return cst.UnaryOperation(cst.Not(), test)


def _pure(test: cst.BaseExpression) -> bool:
    """No calls besides a few read-only builtins and tensor-shape methods."""
    calls = m.findall(test, m.Call())
    for call in calls:
        name = call.func.value if isinstance(call.func, cst.Name) else call.func.attr.value if isinstance(call.func, cst.Attribute) else None
        if name not in _PURE_CALLS:
            return False
    return True


class _Leftovers(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, model_class: str):
        self.model_class = model_class
        self.stack: list[str] = []  # enclosing class / function names
        self.removed_prints: list[int] = []
        self.asserts_to_errors: list[int] = []
        self.asserts_dropped: list[int] = []
        self.asserts_kept: list[tuple[int, str]] = []
        self.folded_version_checks: list[int] = []
        self.version_checks_left: list[tuple[int, str]] = []

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.stack.append(f"class {node.name.value}")

    def leave_ClassDef(self, original, updated):
        self.stack.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.append(node.name.value)

    def leave_FunctionDef(self, original, updated):
        self.stack.pop()
        return updated

    def _at_api_edge(self) -> bool:
        """Inside a constructor, or the model's forward (where arguments come from users)."""
        function = next((s for s in reversed(self.stack) if not s.startswith("class ")), None)
        owner = next((s for s in reversed(self.stack) if s.startswith("class ")), None)
        return function == "__init__" or (function == "forward" and owner == f"class {self.model_class}")

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine):
        kept: list[cst.BaseSmallStatement] = []
        raises: list[cst.BaseStatement] = []
        for small, small_original in zip(updated.body, original.body, strict=True):
            if m.matches(small, m.Expr(m.Call(func=m.Name("print")))):
                self.removed_prints.append(self._line(small_original))
                continue
            if isinstance(small, cst.Assert):
                line = self._line(small_original)
                if self._at_api_edge():
                    message = small.msg.with_changes(lpar=[], rpar=[]) if small.msg is not None else cst.SimpleString(repr(f"expected {code(small.test)}"))
                    raises.append(cst.If(test=_negate(small.test), body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Raise(
                        cst.Call(cst.Name("ValueError"), [cst.Arg(message)]))])])))
                    self.asserts_to_errors.append(line)
                    continue
                if _pure(small.test):
                    self.asserts_dropped.append(line)
                    continue
                self.asserts_kept.append((line, "its test calls code that may have side effects"))
            kept.append(small)
        if len(kept) == len(updated.body):
            return updated
        out: list[cst.BaseStatement] = []
        if kept:
            kept[-1] = kept[-1].with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            out.append(updated.with_changes(body=kept))
        out += raises
        if not out:
            return cst.RemoveFromParent()
        out[0] = out[0].with_changes(leading_lines=updated.leading_lines)
        return cst.FlattenSentinel(out)

    def leave_If(self, original: cst.If, updated: cst.If):
        verdict = _version_check(original.test)
        if verdict is None:
            if m.findall(original.test, m.Attribute(attr=m.Name("__version__"))):
                self.version_checks_left.append((self._line(original), "a version comparison this codemod does not decide"))
            return updated
        self.folded_version_checks.append(self._line(original))
        if verdict:
            return cst.FlattenSentinel(list(updated.body.body)) if isinstance(updated.body, cst.IndentedBlock) else updated
        if updated.orelse is None:
            return cst.RemoveFromParent()
        if isinstance(updated.orelse, cst.If):
            return updated.orelse
        return cst.FlattenSentinel(list(updated.orelse.body.body))

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        if not updated.body:
            return updated.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])
        return updated


_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")


def _version_literal(node: cst.BaseExpression) -> tuple[int, int] | None:
    if m.matches(node, m.Call(func=m.Attribute(attr=m.Name("parse")) | m.Name("parse") | m.Name("parse_version") | m.Name("Version"))) and node.args:
        node = node.args[0].value
    if isinstance(node, cst.SimpleString):
        match = _VERSION.match(node.evaluated_value)
        return (int(match.group(1)), int(match.group(2))) if match else None
    return None


def _is_torch_version(node: cst.BaseExpression) -> bool:
    if m.matches(node, m.Call(func=m.Attribute(attr=m.Name("parse")) | m.Name("parse") | m.Name("parse_version") | m.Name("Version"))) and node.args:
        node = node.args[0].value
    return m.matches(node, m.Attribute(value=m.Name("torch") | m.Name("th"), attr=m.Name("__version__")))


def _version_check(test: cst.BaseExpression) -> bool | None:
    """True/False when `test` is a torch version check (or a check for scaled_dot_product_attention)
    that every torch diffusers supports answers the same way; None otherwise."""
    if m.matches(test, m.Call(func=m.Name("hasattr"), args=[m.Arg(), m.Arg(m.SimpleString())])):
        if test.args[1].value.evaluated_value == "scaled_dot_product_attention":
            return True
    if m.matches(test, m.Call(func=m.Name("is_torch_version"), args=[m.Arg(m.SimpleString()), m.Arg(m.SimpleString())])):
        op, version = test.args[0].value.evaluated_value, _version_literal(test.args[1].value)
        if version is not None and version <= MIN_TORCH and op in (">=", ">") and not (op == ">" and version == MIN_TORCH):
            return True
        if version is not None and version <= MIN_TORCH and op == "<" :
            return False
        return None
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and _is_torch_version(test.left):
        op, version = type(test.comparisons[0].operator), _version_literal(test.comparisons[0].comparator)
        if version is None or version > MIN_TORCH:
            return None
        if op is cst.GreaterThanEqual or (op is cst.GreaterThan and version < MIN_TORCH):
            return True
        if op is cst.LessThan:
            return False
    return None


def _research_config_imports(module: cst.Module, report: GroupReport) -> cst.Module:
    """Imports of omegaconf (or hydra) inside functions and the `if type(x) == ListConfig:`
    conversions that use them: a diffusers config never holds those types."""
    found: dict[str, str] = {}

    class Find(cst.CSTVisitor):
        depth = 0

        def visit_FunctionDef(self, node):
            self.depth += 1

        def leave_FunctionDef(self, node):
            self.depth -= 1

        def visit_ImportFrom(self, node: cst.ImportFrom):
            pkg = (cst.helpers.get_full_name_for_node(node.module) or "").split(".")[0] if node.module else ""
            if self.depth and pkg in RESEARCH_CONFIG_PACKAGES and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    found[alias.evaluated_alias or alias.name.value] = pkg

    module.visit(Find())
    if not found:
        return module
    names = set(found)

    def mentions(node: cst.CSTNode) -> bool:
        return bool(m.findall(node, m.Name(m.MatchIfTrue(lambda v: v in names))))

    class Remove(cst.CSTTransformer):
        def leave_If(self, original, updated):
            if updated.orelse is None and mentions(updated.test):
                return cst.RemoveFromParent()
            return updated

        def leave_SimpleStatementLine(self, original, updated):
            if len(updated.body) == 1 and isinstance(updated.body[0], cst.ImportFrom):
                imp = updated.body[0]
                pkg = (cst.helpers.get_full_name_for_node(imp.module) or "").split(".")[0] if imp.module else ""
                if pkg in RESEARCH_CONFIG_PACKAGES:
                    return cst.RemoveFromParent()
            return updated

        def leave_IndentedBlock(self, original, updated):
            return updated if updated.body else updated.with_changes(body=[cst.SimpleStatementLine([cst.Pass()])])

    candidate = module.visit(Remove())
    if mentions(candidate):
        report.skip(f"{', '.join(sorted(set(found.values())))} imports", "the imported names are used beyond `if` checks on argument types")
        return module
    report.changed(f"dropped runtime conversions of {', '.join(sorted(set(found.values())))} config types ({', '.join(sorted(names))})")
    return candidate


def _reachable(module: cst.Module, roots: set[str]) -> set[str]:
    defs = {s.name.value: s for s in module.body if isinstance(s, (cst.FunctionDef, cst.ClassDef))}
    other_uses: set[str] = set()
    for s in module.body:  # names any other module-level statement reads are roots too
        if not isinstance(s, (cst.FunctionDef, cst.ClassDef)):
            other_uses |= {n.value for n in m.findall(s, m.Name())}
    seen: set[str] = set()
    todo = [n for n in (roots | other_uses) if n in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [n.value for n in m.findall(defs[name], m.Name()) if n.value in defs and n.value not in seen]
    return seen


def remove_leftovers(module: cst.Module, target: Target) -> tuple[cst.Module, GroupReport]:
    report = GroupReport("leftovers")
    module = _research_config_imports(module, report)
    tool = _Leftovers(target.class_name)
    module = MetadataWrapper(module).visit(tool)
    if tool.removed_prints:
        report.changed(f"removed {len(tool.removed_prints)} print call(s) (lines {', '.join(map(str, tool.removed_prints))} of the port)")
    if tool.asserts_to_errors:
        report.changed(f"{len(tool.asserts_to_errors)} assert(s) in constructors and forward -> ValueError")
    if tool.asserts_dropped:
        report.changed(f"dropped {len(tool.asserts_dropped)} internal consistency assert(s) inside blocks")
    for line, why in tool.asserts_kept:
        report.skip(f"assert at line {line}", why)
    if tool.folded_version_checks:
        report.changed(f"folded {len(tool.folded_version_checks)} torch version check(s) (diffusers needs torch >= {'.'.join(map(str, MIN_TORCH))})")
    for line, why in tool.version_checks_left:
        report.skip(f"version check at line {line}", why)
    if top_class(module, target.class_name) is not None:
        roots = {target.class_name}
        reachable = _reachable(module, roots)
        dead = [s.name.value for s in module.body if isinstance(s, (cst.FunctionDef, cst.ClassDef)) and s.name.value not in reachable]
        if dead:
            module = module.with_changes(body=[s for s in module.body if not (isinstance(s, (cst.FunctionDef, cst.ClassDef)) and s.name.value in dead)])
            report.changed(f"removed {len(dead)} definition(s) the model never reaches: {', '.join(dead)}")
    module, dropped = drop_unused_imports(module)
    if dropped:
        report.changed(f"dropped unused imports: {', '.join(dropped)}")
    return module, report
