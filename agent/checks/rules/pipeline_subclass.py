import re

from agent.checks.registry import Rule, register

_CLASS = re.compile(r"^class\s+(\w+)\s*\(([^)]*)\)\s*:", re.M)
# Base classes meant to be subclassed.
ABSTRACT = {"DiffusionPipeline", "ModularPipeline", "SequentialPipelineBlocks", "AutoPipelineBlocks", "LoopSequentialPipelineBlocks", "ConditionalPipelineBlocks"}


def check(ctx):
    for match in _CLASS.finditer(ctx.source):
        name = match.group(1)
        bases = [b.strip().split(".")[-1] for b in match.group(2).split(",") if b.strip() and "=" not in b]
        for base in bases:
            if base.endswith("ModularPipeline"):
                continue  # modular pipelines are thin containers of blocks: subclassing is their design
            if base.endswith("Pipeline") and base not in ABSTRACT and not base.endswith("MixinPipeline"):
                line = ctx.line_at(match.start())
                yield line, f"{name} subclasses the concrete pipeline {base}: a variant is its own DiffusionPipeline (share code with # Copied from)"


RULE = register(Rule(
    id="P007",
    name="pipeline-subclass",
    scope="pipelines",
    summary="No pipeline subclasses another concrete pipeline.",
    what="A class whose bases include a concrete pipeline (a name ending in Pipeline other than DiffusionPipeline and the modular bases).",
    why="Changes to the parent silently change the variant; diffusers keeps each pipeline self-contained and shares code through # Copied from.",
    bad="class MyImg2ImgPipeline(MyPipeline):",
    good="class MyImg2ImgPipeline(DiffusionPipeline, FromSingleFileMixin):",
    anchor="pipelines.md#base-class",
    check=check,
    kind="text",
    prefilter=lambda s: re.search(r"^class\s+\w+\s*\([^)]*\w+Pipeline\b", s, re.M) is not None,
))
