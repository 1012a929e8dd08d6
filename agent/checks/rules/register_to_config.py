import ast

from agent.checks.registry import Rule, register


def _decorated(ctx, fn) -> bool:
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        q = ctx.names.qualify(target) or (target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
        if q.split(".")[-1] == "register_to_config":
            return True
    return False


def _factory(init) -> bool:
    """An __init__ that only refuses direct construction (AutoModel-style factories)."""
    body = [s for s in init.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return bool(body) and all(isinstance(s, ast.Raise) for s in body)


def _registered_by_subclass(ctx, cls) -> bool:
    """A base whose same-file subclasses register their own (and so the base's) arguments."""
    for other in ctx.classes.all:
        if other is cls or cls.name not in ctx.classes.base_names(other):
            continue
        init = ctx.classes.methods(other).get("__init__")
        if init is not None and _decorated(ctx, init):
            return True
    return False


def _subclassed_in_package(ctx, cls) -> bool:
    """A base class other files of the package derive from: its subclasses register the arguments."""
    from agent.checks.indexes import base_names
    from agent.checks.tree import installed_root

    root = ctx.root or installed_root()
    return root is not None and cls.name in base_names(ctx, root)


def _container(ctx, init) -> bool:
    """Every argument becomes a submodule (`nn.ModuleList(controlnets)`): nothing a config could hold."""
    args = [a.arg for a in init.args.args[1:] + init.args.kwonlyargs]
    wrapped = set()
    for call in ctx.inside(init, ast.Call):
        if (call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")) not in ("ModuleList", "ModuleDict", "Sequential"):
            continue
        for arg in call.args:  # the models themselves, not sizes used to build new layers
            value = arg.value if isinstance(arg, ast.Starred) else arg
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") in ("list", "tuple") and value.args:
                value = value.args[0]
            if isinstance(value, ast.Name):
                wrapped.add(value.id)
    return bool(args) and all(a in wrapped for a in args)


def check(ctx):
    for cls in ctx.classes.all:
        if not ctx.classes.inherits(cls, "ConfigMixin") or ctx.classes.is_pipeline(cls):
            continue  # pipelines register their components, not a config
        init = ctx.classes.methods(cls).get("__init__")
        if init is None or _factory(init) or _registered_by_subclass(ctx, cls) or _container(ctx, init):
            continue
        if not _decorated(ctx, init) and _subclassed_in_package(ctx, cls):
            continue
        has_args = len(init.args.args) > 1 or init.args.kwonlyargs or init.args.vararg or init.args.kwarg
        if has_args and not _decorated(ctx, init):
            yield init, f"{cls.name}.__init__ lacks @register_to_config: its arguments are not saved in config.json"
        if init.args.vararg is not None:
            yield init, f"{cls.name}.__init__ takes *{init.args.vararg.arg}, which register_to_config cannot save"


RULE = register(Rule(
    id="M003",
    name="register-to-config",
    scope="models",
    summary="Config classes capture every __init__ argument with @register_to_config.",
    what="A ConfigMixin subclass (directly, through an alias or a same-file base) whose __init__ is not decorated with @register_to_config, or takes *args.",
    why="from_pretrained rebuilds the model from config.json; an argument that is not captured silently falls back to its default when the model is reloaded.",
    bad="class MyModel(ModelMixin, ConfigMixin):\n    def __init__(self, hidden_size=64): ...",
    good="class MyModel(ModelMixin, ConfigMixin):\n    @register_to_config\n    def __init__(self, hidden_size=64): ...",
    anchor="models.md#register-to-config",
    check=check,
    triggers=("ConfigMixin",),
))
