"""Classes of one file from its syntax tree: which class owns a method, what a class inherits
(through same-file bases and import aliases), class attributes. Never from a one-line regex:
class headers span lines, bases are aliased, methods are decorated."""

from __future__ import annotations

import ast
from functools import cached_property

from agent.checks.registry import walk

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# Bases a pipeline is not a concrete pipeline through.
ABSTRACT_PIPELINES = {
    "DiffusionPipeline", "ModularPipeline", "SequentialPipelineBlocks", "AutoPipelineBlocks",
    "LoopSequentialPipelineBlocks", "ConditionalPipelineBlocks", "ModularPipelineBlocks",
}


class ClassIndex:
    def __init__(self, tree: ast.Module, names, classes: list[ast.ClassDef] | None = None) -> None:
        self.tree = tree
        self.names = names
        self.all: list[ast.ClassDef] = classes if classes is not None else [n for n in walk(tree) if isinstance(n, ast.ClassDef)]
        self.all.sort(key=lambda c: c.lineno)
        self.by_name: dict[str, ast.ClassDef] = {}
        for cls in self.all:
            self.by_name.setdefault(cls.name, cls)

    # bases -------------------------------------------------------------------------------------
    def base_names(self, cls: ast.ClassDef) -> list[str]:
        """The last segment of each base, resolved through import aliases (`as Base`)."""
        out = []
        for b in cls.bases:
            q = self.names.qualify(b)
            if q:
                out.append(q.split(".")[-1])
            elif isinstance(b, ast.Attribute):
                out.append(b.attr)
            elif isinstance(b, ast.Name):
                out.append(b.id)
        return out

    def ancestors(self, cls: ast.ClassDef) -> set[str]:
        """Names of every base, following bases defined in this same file."""
        seen: set[str] = set()
        stack = list(self.base_names(cls))
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            local = self.by_name.get(name)
            if local is not None and local is not cls:
                stack += self.base_names(local)
        return seen

    def inherits(self, cls: ast.ClassDef, *bases: str) -> bool:
        return bool(self.ancestors(cls) & set(bases))

    def is_pipeline(self, cls: ast.ClassDef) -> bool:
        return cls.name.endswith("Pipeline") or any(a.endswith("Pipeline") for a in self.ancestors(cls))

    def is_model(self, cls: ast.ClassDef) -> bool:
        """An nn.Module (directly, through ModelMixin, or through a same-file module class)."""
        anc = self.ancestors(cls)
        return bool(anc & {"Module", "ModelMixin"}) or any(a.endswith(("Model", "Block", "Layer")) for a in anc)

    # members -----------------------------------------------------------------------------------
    @staticmethod
    def methods(cls: ast.ClassDef) -> dict[str, FunctionNode]:
        return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}

    def method(self, cls: ast.ClassDef, name: str) -> FunctionNode | None:
        """A method of `cls` or of a same-file ancestor."""
        for c in self.lineage(cls):
            fn = self.methods(c).get(name)
            if fn is not None:
                return fn
        return None

    def lineage(self, cls: ast.ClassDef) -> list[ast.ClassDef]:
        """`cls` and its same-file ancestors, nearest first."""
        out, stack = [], [cls]
        while stack:
            c = stack.pop(0)
            if c in out:
                continue
            out.append(c)
            stack += [self.by_name[b] for b in self.base_names(c) if b in self.by_name and self.by_name[b] is not c]
        return out

    def attr(self, cls: ast.ClassDef, name: str) -> ast.expr | None:
        """A class attribute's value, looked up through same-file ancestors."""
        for c in self.lineage(cls):
            for node in c.body:
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                    return node.value
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                    return node.value
        return None

    @cached_property
    def owners(self) -> dict[int, ast.ClassDef]:
        """id(method node) -> the class whose body defines it."""
        return {id(fn): cls for cls in self.all for fn in cls.body if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))}

    def defines_legacy_attention(self) -> bool:
        """The file defines the legacy `Attention` class (with `set_processor`): the processors beside it
        implement its fixed calling convention, one backend each."""
        cls = self.by_name.get("Attention")
        return cls is not None and "set_processor" in self.methods(cls)

    @staticmethod
    def contains(cls: ast.ClassDef, node: ast.AST) -> bool:
        return cls.lineno <= getattr(node, "lineno", 0) <= cls.end_lineno

    def pipeline_calls(self) -> list[tuple[ast.ClassDef, FunctionNode]]:
        """(pipeline class, its own `__call__`) for every pipeline class of the file."""
        out = []
        for cls in self.all:
            fn = self.methods(cls).get("__call__")
            if fn is not None and self.is_pipeline(cls):
                out.append((cls, fn))
        return out

