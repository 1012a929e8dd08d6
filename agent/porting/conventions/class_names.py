"""No class in the port named like one of diffusers' building blocks or public classes: a
reader (or an import added later) must not mistake the file's own `Attention` or `FeedForward`
for diffusers'. Such classes get the model's prefix (`Attention` -> `TinyDiTAttention`, the way
diffusers names FluxAttention or WanAttention), and every reference in the file follows.

Class names do not reach the state dict (module attribute names do), so weights are unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import libcst as cst

from agent.porting.conventions.cstutil import module_names
from agent.porting.conventions.report import GroupReport
from agent.porting.conventions.target import Target

# diffusers' shared building-block modules: a class defined in one of them is what a reader of
# a diffusers model expects the name to mean.
SHARED_MODULES = (
    "attention.py", "attention_processor.py", "embeddings.py", "normalization.py", "resnet.py", "activations.py",
    "downsampling.py", "upsampling.py", "modeling_outputs.py", "unets/unet_2d_blocks.py", "transformers/transformer_2d.py",
)


@lru_cache(maxsize=1)
def diffusers_class_names() -> frozenset[str]:
    """Classes of diffusers' shared modules (read as text, nothing imported from them) and every
    name diffusers exports at its top level."""
    import diffusers

    models = Path(diffusers.__file__).parent / "models"
    names: set[str] = set()
    for rel in SHARED_MODULES:
        path = models / rel
        if path.is_file():
            names |= set(re.findall(r"^class (\w+)", path.read_text(), re.M))
    for exported in getattr(diffusers, "_import_structure", {}).values():
        names |= {n for n in exported if n[:1].isupper()}
    return frozenset(names)


class _Rename(cst.CSTTransformer):
    def __init__(self, renames: dict[str, str]):
        self.renames = renames

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.renames[updated.value]) if updated.value in self.renames else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        # `obj.Attention` is an attribute of something else, not our class: keep its name
        if original.attr.value in self.renames:
            return updated.with_changes(attr=original.attr)
        return updated

    def leave_ImportAlias(self, original: cst.ImportAlias, updated: cst.ImportAlias) -> cst.ImportAlias:
        return original  # names imported from elsewhere keep their spelling

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def unshadow_class_names(module: cst.Module, target: Target, taken: frozenset[str] | None = None) -> tuple[cst.Module, GroupReport]:
    """Rename the file's top-level classes that shadow a diffusers class name."""
    report = GroupReport("class names")
    taken = diffusers_class_names() if taken is None else taken
    bound = module_names(module)
    classes = [s.name.value for s in module.body if isinstance(s, cst.ClassDef)]
    imported = bound - set(classes) - {s.name.value for s in module.body if isinstance(s, cst.FunctionDef)}
    renames: dict[str, str] = {}
    for name in classes:
        if name == target.class_name or name not in taken:
            continue
        new = name if name.startswith(target.prefix) else f"{target.prefix}{name}"
        if new == name or new in bound or new in renames.values() or new in taken:
            report.skip(f"class {name}", f"shadows diffusers' {name}, but {new} is taken too")
            continue
        if name in imported:
            report.skip(f"class {name}", "the file also imports this name")
            continue
        renames[name] = new
    if renames:
        module = module.visit(_Rename(renames))
        for old, new in renames.items():
            report.changed(f"class {old} -> {new} (diffusers has its own {old})")
    report.data["class_renames"] = renames
    return module, report
