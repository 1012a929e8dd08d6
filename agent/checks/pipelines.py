"""Which classes of a file are pipelines, and which of them run torch code of their own."""

from __future__ import annotations

import ast

MODULAR = {"ModularPipeline", "ModularPipelineBlocks", "SequentialPipelineBlocks", "AutoPipelineBlocks", "LoopSequentialPipelineBlocks", "ConditionalPipelineBlocks"}


def is_foreign(ctx, cls: ast.ClassDef) -> bool:
    """ONNX and Flax pipelines build no torch graph and hold no torch offload hooks."""
    names = {cls.name, *ctx.classes.ancestors(cls)}
    return any(n.startswith(("Onnx", "Flax")) or n in ("OnnxRuntimeModel", "FlaxDiffusionPipeline") for n in names)


def is_modular(ctx, cls: ast.ClassDef) -> bool:
    return "Modular" in cls.name or bool(ctx.classes.ancestors(cls) & MODULAR)


def is_combined(ctx, cls: ast.ClassDef) -> bool:
    """Combined pipelines delegate to sub-pipelines, which free their own hooks."""
    return "Combined" in cls.name


def torch_pipeline_calls(ctx):
    """(class, __call__) of the file's own torch pipelines (not ONNX/Flax, not modular)."""
    return [(c, f) for c, f in ctx.classes.pipeline_calls() if not is_foreign(ctx, c) and not is_modular(ctx, c)]


def decorator_qualnames(ctx, fn) -> set[str]:
    out = set()
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        q = ctx.names.qualify(target)
        if not q:
            q = ast.unparse(target)
        out.add(q)
    return out


def has_vae(ctx, cls: ast.ClassDef) -> bool:
    """The pipeline has a `vae` component (`self.vae`, exactly, somewhere in its class)."""
    for c in ctx.classes.lineage(cls):
        for n in ctx.inside(c, ast.Attribute):
            if n.attr == "vae" and isinstance(n.value, ast.Name) and n.value.id == "self":
                return True
    init = ctx.classes.method(cls, "__init__")
    return init is not None and any(a.arg == "vae" for a in init.args.args)
