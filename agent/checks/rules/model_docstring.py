import ast
import re

from agent.checks.model_contract import in_model_folder, is_model_mixin
from agent.checks.registry import Rule, register
from agent.checks.rules.register_to_config import _decorated

# The section headings diffusers' docstrings (and doc-builder) use for constructor arguments.
_SECTION = re.compile(r"^\s*(?:Parameters|Args|Arguments)\s*:", re.M)


def _registered_args(ctx, cls: ast.ClassDef) -> list[str]:
    """The arguments of a @register_to_config __init__ (what the config, and the docs, hold)."""
    init = ctx.classes.methods(cls).get("__init__")
    if init is None:
        return []
    if not _decorated(ctx, init):
        return []
    a = init.args
    return [p.arg for p in [*a.posonlyargs, *a.args][1:] + a.kwonlyargs]


def check(ctx):
    if not in_model_folder(ctx):
        return
    for cls in ctx.tree.body:
        if not isinstance(cls, ast.ClassDef) or not is_model_mixin(ctx, cls):
            continue
        args = _registered_args(ctx, cls)
        if not args:
            continue
        doc = ast.get_docstring(cls)
        if not doc:
            yield cls, f"{cls.name} has no class docstring: its {len(args)} config arguments are documented nowhere"
        elif not _SECTION.search(doc):
            yield cls, f"{cls.name}'s docstring has no `Parameters:` section for its {len(args)} config arguments"


RULE = register(Rule(
    id="M015",
    name="model-docstring",
    scope="models",
    summary="A model class documents its config arguments in a `Parameters:` section.",
    what="A ModelMixin subclass whose @register_to_config __init__ takes arguments, with no class docstring or a docstring without a `Parameters:` (or `Args:`) section.",
    why="diffusers' API reference is generated from class docstrings, and the config arguments are what users set in config.json and from_pretrained; undocumented, each must be reverse-engineered from the code.",
    bad="class MyTransformer2DModel(ModelMixin, ConfigMixin):\n    @register_to_config\n    def __init__(self, num_layers: int = 28): ...",
    good='class MyTransformer2DModel(ModelMixin, ConfigMixin):\n    """\n    A Transformer model for ...\n\n    Parameters:\n        num_layers (`int`, defaults to `28`):\n            Number of transformer blocks.\n    """',
    anchor="models.md#model-class",
    check=check,
    triggers=("register_to_config",),
))
