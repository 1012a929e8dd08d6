import ast

from agent.checks.registry import Rule, register, walk


def _sets_processor(cls: ast.ClassDef) -> ast.Call | None:
    for node in walk(cls):
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "set_processor"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"
        ):
            return node
    return None


def check(ctx):
    for cls in ctx.classes.all:
        if _sets_processor(cls) is None:
            continue
        # the class that provides set_processor (the mixin itself, the legacy Attention) is the pattern
        if any("set_processor" in ctx.classes.methods(c) for c in ctx.classes.lineage(cls)):
            continue
        missing = []
        if not ctx.classes.inherits(cls, "AttentionModuleMixin"):
            missing.append("does not inherit AttentionModuleMixin")
        for attr in ("_default_processor_cls", "_available_processors"):
            if ctx.classes.attr(cls, attr) is None:
                missing.append(f"does not declare {attr}")
        if missing:
            yield cls, f"{cls.name} sets attention processors but {', '.join(missing)}"


RULE = register(Rule(
    id="M006",
    name="attention-processor-pattern",
    scope="models",
    summary="Attention classes with processors inherit AttentionModuleMixin and declare their processors.",
    what="A class that calls self.set_processor(...) without inheriting AttentionModuleMixin (directly or through a same-file base), or without _default_processor_cls / _available_processors.",
    why="The mixin provides set_processor, fused projections and backend switching; the declared processors let users and tests swap attention implementations safely.",
    bad="class MyAttention(nn.Module):\n    def __init__(self):\n        ...\n        self.set_processor(MyAttnProcessor())",
    good="class MyAttention(nn.Module, AttentionModuleMixin):\n    _default_processor_cls = MyAttnProcessor\n    _available_processors = [MyAttnProcessor]",
    anchor="models.md#attention-dispatch",
    check=check,
    triggers=("set_processor(",),
))
