import ast

from agent.checks.astutil import base_names, class_attr, classes, dotted
from agent.checks.registry import Rule, register


def _uses_processor(cls: ast.ClassDef) -> bool:  # noqa: D103
    for node in ast.walk(cls):
        if isinstance(node, ast.Call) and dotted(node.func) == "self.set_processor":
            return True
    return False


def check(ctx):
    for cls in classes(ctx.tree):
        if not _uses_processor(cls):
            continue
        if "AttentionModuleMixin" not in base_names(cls):
            yield cls, f"{cls.name} sets attention processors but does not inherit AttentionModuleMixin"
        for attr in ("_default_processor_cls", "_available_processors"):
            if class_attr(cls, attr) is None:
                yield cls, f"{cls.name} sets attention processors but does not declare {attr}"


RULE = register(Rule(
    id="M006",
    name="attention-processor-pattern",
    scope="models",
    summary="Attention classes with processors inherit AttentionModuleMixin and declare their processors.",
    what="A class that calls self.set_processor(...) without inheriting AttentionModuleMixin, or without _default_processor_cls / _available_processors.",
    why="The mixin provides set_processor, fused projections and backend switching; the declared processors let users and tests swap attention implementations safely.",
    bad="class MyAttention(nn.Module):\n    def __init__(self):\n        ...\n        self.set_processor(MyAttnProcessor())",
    good="class MyAttention(nn.Module, AttentionModuleMixin):\n    _default_processor_cls = MyAttnProcessor\n    _available_processors = [MyAttnProcessor]",
    anchor="models.md#attention-dispatch",
    check=check,
    triggers=("set_processor(",),
))
