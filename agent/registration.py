"""Register a new model class in a diffusers source tree's `__init__` files.

diffusers imports lazily: a name must appear in `_import_structure` (what `from diffusers import X`
resolves at run time) and in the `TYPE_CHECKING` imports (what type checkers and
DIFFUSERS_SLOW_IMPORT see). Missing either half is a bug reviewers flag, so both are edited here,
with libcst so formatting and comments survive.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import libcst.matchers as m


class RegistrationError(Exception):
    pass


def _string_value(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value
    return None


def _insert_sorted_string(elements: list[cst.Element], name: str) -> list[cst.Element]:
    values = [_string_value(e.value) for e in elements]
    if name in values:
        return elements
    index = next((i for i, v in enumerate(values) if v is not None and v.lower() > name.lower()), len(elements))
    template = elements[min(index, len(elements) - 1)] if elements else None
    new = cst.Element(cst.SimpleString(f'"{name}"'), comma=template.comma if template else cst.MaybeSentinel.DEFAULT)
    if index == len(elements) and elements:
        # keep a trailing comma style: give the previous last element the comma of a middle one
        last = elements[-1]
        comma = elements[0].comma if len(elements) > 1 else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        elements = [*elements[:-1], last.with_changes(comma=comma)]
        new = new.with_changes(comma=last.comma)
    return [*elements[:index], new, *elements[index:]]


def _insert_sorted_alias(names: list[cst.ImportAlias], name: str) -> list[cst.ImportAlias]:
    existing = [a.name.value for a in names if isinstance(a.name, cst.Name)]
    if name in existing:
        return names
    index = next((i for i, v in enumerate(existing) if v.lower() > name.lower()), len(names))
    template = names[min(index, len(names) - 1)]
    new = cst.ImportAlias(name=cst.Name(name), comma=template.comma)
    if index == len(names):
        last = names[-1]
        comma = names[0].comma if len(names) > 1 else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        names = [*names[:-1], last.with_changes(comma=comma)]
        new = new.with_changes(comma=last.comma)
    return [*names[:index], new, *names[index:]]


class _AddToImportFrom(cst.CSTTransformer):
    """Add `name` to `from <module> import (...)` statements (relative, level 1)."""

    def __init__(self, module: str, name: str):
        self.module, self.name, self.hits = module, name, 0

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        mod = updated.module
        if len(updated.relative) == 1 and mod is not None and isinstance(mod, cst.Name) and mod.value == self.module:
            if isinstance(updated.names, cst.ImportStar):
                return updated
            self.hits += 1
            return updated.with_changes(names=_insert_sorted_alias(list(updated.names), self.name))
        return updated


class _ExtendModelsList(cst.CSTTransformer):
    """Add the class to `_import_structure["models"].extend([...])`."""

    def __init__(self, name: str):
        self.name, self.hits = name, 0

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if m.matches(
            updated.func,
            m.Attribute(value=m.Subscript(value=m.Name("_import_structure"), slice=[m.SubscriptElement(m.Index(m.SimpleString()))]), attr=m.Name("extend")),
        ):
            key = _string_value(updated.func.value.slice[0].slice.value)
            if key == "models" and updated.args and isinstance(updated.args[0].value, cst.List):
                self.hits += 1
                lst = updated.args[0].value
                new_list = lst.with_changes(elements=_insert_sorted_string(list(lst.elements), self.name))
                return updated.with_changes(args=[updated.args[0].with_changes(value=new_list), *updated.args[1:]])
        return updated


def _import_structure_assignment(key: str, name: str) -> cst.SimpleStatementLine:
    return cst.parse_statement(f'_import_structure["{key}"] = ["{name}"]\n')


class _AddImportStructureKey(cst.CSTTransformer):
    """Insert `_import_structure["transformers.<module>"] = [...]` after its siblings, sorted."""

    def __init__(self, key: str, name: str, sibling_prefix: str):
        self.key, self.name, self.prefix, self.hits = key, name, sibling_prefix, 0

    def _key_of(self, stmt: cst.CSTNode) -> str | None:
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return None
        node = stmt.body[0]
        if m.matches(node, m.Assign(targets=[m.AssignTarget(m.Subscript(value=m.Name("_import_structure")))])):
            return _string_value(node.targets[0].target.slice[0].slice.value)
        return None

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body = list(updated.body)
        keys = [self._key_of(s) for s in body]
        siblings = [i for i, k in enumerate(keys) if k and k.startswith(self.prefix)]
        if not siblings or self.hits:
            return updated
        self.hits += 1
        if self.key in keys:
            return updated
        after = max((i for i in siblings if keys[i] < self.key), default=siblings[0] - 1)
        body.insert(after + 1, _import_structure_assignment(self.key, self.name))
        return updated.with_changes(body=body)


class _AddEagerImport(cst.CSTTransformer):
    """In `models/transformers/__init__.py`: add `from .<module> import <name>` beside its siblings."""

    def __init__(self, module: str, name: str):
        self.module, self.name, self.hits = module, name, 0

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body = list(updated.body)
        mods = []
        for s in body:
            node = s.body[0] if isinstance(s, cst.SimpleStatementLine) and len(s.body) == 1 else None
            if isinstance(node, cst.ImportFrom) and len(node.relative) == 1 and isinstance(node.module, cst.Name):
                mods.append(node.module.value)
            else:
                mods.append(None)
        positions = [i for i, v in enumerate(mods) if v]
        if len(positions) < 3 or self.hits:
            return updated
        self.hits += 1
        if self.module in mods:
            return updated
        after = max((i for i in positions if mods[i] < self.module), default=positions[0] - 1)
        body.insert(after + 1, cst.parse_statement(f"from .{self.module} import {self.name}\n"))
        return updated.with_changes(body=body)


def _rewrite(path: Path, *transformers: cst.CSTTransformer) -> None:
    if not path.is_file():
        raise RegistrationError(f"{path} not found: not a diffusers source tree")
    tree = cst.parse_module(path.read_text())
    for t in transformers:
        tree = tree.visit(t)
        if not t.hits:
            raise RegistrationError(f"could not find where to register in {path} ({type(t).__name__})")
    path.write_text(tree.code)


def register_model(src_root: Path, module_name: str, class_name: str, family: str = "transformers") -> list[Path]:
    """Register `class_name` from `models/<family>/<module_name>.py`; returns the files edited."""
    pkg = src_root / "diffusers"
    family_init = pkg / "models" / family / "__init__.py"
    models_init = pkg / "models" / "__init__.py"
    top_init = pkg / "__init__.py"
    _rewrite(family_init, _AddEagerImport(module_name, class_name))
    _rewrite(
        models_init,
        _AddImportStructureKey(f"{family}.{module_name}", class_name, f"{family}."),
        _AddToImportFrom(family, class_name),
    )
    _rewrite(top_init, _ExtendModelsList(class_name), _AddToImportFrom("models", class_name))
    return [family_init, models_init, top_init]
