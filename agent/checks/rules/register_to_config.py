import ast
import re

from agent.checks.astutil import base_names, classes, decorator_names, methods
from agent.checks.registry import Rule, register

_CONFIG_CLASS = re.compile(r"^\s*class\s+\w+\([^)]*ConfigMixin", re.M)
_STAR_INIT = re.compile(r"def __init__\(\s*self\s*,\s*\*\w")


def check(ctx):
    for cls in classes(ctx.tree):
        bases = base_names(cls)
        if "ConfigMixin" not in bases or cls.name.endswith("Pipeline") or any(b.endswith("Pipeline") for b in bases):
            continue  # pipelines register their components, not a config
        init = methods(cls).get("__init__")
        if init is None:
            continue
        if any(isinstance(stmt, ast.Raise) for stmt in init.body) and all(
            isinstance(stmt, ast.Raise) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)) for stmt in init.body
        ):
            continue  # a factory that refuses direct construction (AutoModel-style)
        has_args = len(init.args.args) > 1 or init.args.kwonlyargs or init.args.vararg or init.args.kwarg
        if has_args and not any(name.split(".")[-1] == "register_to_config" for name in decorator_names(init)):
            yield init, f"{cls.name}.__init__ lacks @register_to_config: its arguments are not saved in config.json"
        if init.args.vararg is not None:
            yield init, f"{cls.name}.__init__ takes *{init.args.vararg.arg}, which register_to_config cannot save"


RULE = register(Rule(
    id="M003",
    name="register-to-config",
    scope="models",
    summary="Config classes capture every __init__ argument with @register_to_config.",
    what="A ConfigMixin subclass whose __init__ is not decorated with @register_to_config, or takes *args.",
    why="from_pretrained rebuilds the model from config.json; an argument that is not captured silently falls back to its default when the model is reloaded.",
    bad="class MyModel(ModelMixin, ConfigMixin):\n    def __init__(self, hidden_size=64): ...",
    good="class MyModel(ModelMixin, ConfigMixin):\n    @register_to_config\n    def __init__(self, hidden_size=64): ...",
    anchor="models.md#register-to-config",
    check=check,
    prefilter=lambda s: len(_CONFIG_CLASS.findall(s)) > s.count("@register_to_config") or _STAR_INIT.search(s) is not None,
))
