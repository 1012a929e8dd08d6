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


class _CaptureConfig(cst.CSTTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new
        self.found = False

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if original.name.value != self.old:
            return updated
        self.found = True
        bases = [b for b in updated.bases if not m.matches(b.value, TORCH_MODULE)]
        bases = [cst.Arg(cst.Name("ModelMixin")), cst.Arg(cst.Name("ConfigMixin")), *bases]
        bases = [b.with_changes(comma=cst.MaybeSentinel.DEFAULT) for b in bases]
        body = []
        for stmt in updated.body.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
                if not any(m.matches(d.decorator, m.Name("register_to_config")) for d in stmt.decorators):
                    stmt = stmt.with_changes(decorators=[cst.Decorator(cst.Name("register_to_config")), *stmt.decorators])
            body.append(stmt)
        return updated.with_changes(bases=bases, body=updated.body.with_changes(body=body))

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.new) if updated.value == self.old else updated


def insert_after_imports(module: cst.Module, code: str) -> cst.Module:
    body = list(module.body)
    last_import = -1
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and all(isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
            last_import = i
    new = list(cst.parse_module(code).body)
    return module.with_changes(body=[*body[: last_import + 1], *new, *body[last_import + 1:]])


def capture_config(source: str, reference_class: str, class_name: str, in_tree: bool) -> str:
    """Return `source` with `reference_class` turned into the diffusers model `class_name`."""
    module = cst.parse_module(source)
    transformer = _CaptureConfig(reference_class, class_name)
    module = module.visit(transformer)
    if not transformer.found:
        raise ValueError(f"class {reference_class} not found at the top level of the reference file")
    module = insert_after_imports(module, IN_TREE_IMPORTS if in_tree else STANDALONE_IMPORTS)
    return module.code
