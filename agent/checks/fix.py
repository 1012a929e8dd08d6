"""`integrate check --fix`: rewrite what can be fixed mechanically, keeping formatting and comments.

- P001: `@torch.no_grad()` added to pipeline `__call__` methods (libcst).
- R002: a drifted `# Copied from` block is replaced by its source with the stated renames.
- R001: a model class is registered in both halves of the `__init__` files (libcst, as --target
  does); pipelines are reported, not fixed.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

import libcst as cst
import libcst.matchers as m

from agent.checks.registry import Finding


class _AddNoGrad(cst.CSTTransformer):
    def __init__(self) -> None:
        self.class_stack: list[cst.ClassDef] = []
        self.changed = 0

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.class_stack.append(node)

    def leave_ClassDef(self, original, updated):
        self.class_stack.pop()
        return updated

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if updated.name.value != "__call__" or not self.class_stack:
            return updated
        cls = self.class_stack[-1]
        bases = [cst.Module([]).code_for_node(b.value) for b in cls.bases]
        if not (cls.name.value.endswith("Pipeline") or any(b.endswith("Pipeline") for b in bases)):
            return updated
        no_grad = m.Call(func=m.Attribute(value=m.Name("torch"), attr=m.Name("no_grad") | m.Name("inference_mode")))
        if any(m.matches(d.decorator, no_grad) for d in updated.decorators):
            return updated
        self.changed += 1
        decorator = cst.Decorator(cst.parse_expression("torch.no_grad()"))
        return updated.with_changes(decorators=[decorator, *updated.decorators])


def _fix_no_grad(path: Path) -> bool:
    module = cst.parse_module(path.read_text())
    fixer = _AddNoGrad()
    new = module.visit(fixer)
    if fixer.changed:
        if "import torch" not in new.code:
            new = cst.parse_module("import torch\n" + new.code)
        path.write_text(new.code)
    return bool(fixer.changed)


def _fix_copies(path: Path) -> bool:
    from agent.checks.rules.copied_from import (
        apply_replacements,
        copied_blocks,
        installed_root,
        same_code,
        source_of,
    )
    from agent.checks.rules.init_registration import package_root

    root = package_root(path) or installed_root()
    lines = path.read_text().splitlines()
    replacements = []
    for _i, start, end, indent, dotted, spec in copied_blocks(lines):
        original = source_of(root, dotted) if root else None
        if original is None:
            continue
        wanted = apply_replacements(original, spec)
        if not same_code(wanted, "\n".join(lines[start:end])):
            replacements.append((start, end, textwrap.indent(textwrap.dedent(wanted), " " * indent).splitlines()))
    for start, end, new in sorted(replacements, reverse=True):
        lines[start:end] = new
    if replacements:
        path.write_text("\n".join(lines) + "\n")
    return bool(replacements)


def _fix_registration(path: Path, findings: list[Finding]) -> bool:
    from agent.checks.rules.init_registration import package_root
    from agent.registration import RegistrationError, register_model

    root = package_root(path)
    if root is None:
        return False
    rel = path.resolve().relative_to(root).parts
    if rel[0] != "models" or len(rel) != 3:
        return False  # pipelines and nested layouts: reported, not fixed
    changed = False
    for f in findings:
        name = f.message.split(" ", 1)[0]
        try:
            register_model(root.parent, Path(rel[2]).stem, name, rel[1])
            changed = True
        except RegistrationError:
            continue
    return changed


def fix_findings(findings: list[Finding]) -> list[str]:
    """Apply the fixes for `findings`; returns the files changed."""
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_file[f.path].append(f)
    changed = []
    for file, items in by_file.items():
        path = Path(file)
        rules = {f.rule for f in items}
        did = False
        if "P001" in rules:
            did |= _fix_no_grad(path)
        if "R002" in rules:
            did |= _fix_copies(path)
        if "R001" in rules:
            did |= _fix_registration(path, [f for f in items if f.rule == "R001"])
        if did:
            changed.append(file)
    return changed
