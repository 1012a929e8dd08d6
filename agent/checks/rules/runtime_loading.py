import ast

from agent.checks.astutil import dotted
from agent.checks.registry import Rule, register

LOADERS = {"torch.load", "load_file", "safetensors.torch.load_file", "hf_hub_download", "snapshot_download", "load_state_dict_from_url"}


def _is_model_class(cls: ast.ClassDef) -> bool:
    bases = {dotted(b).split(".")[-1] for b in cls.bases}
    return bool(bases & {"Module", "ModelMixin"}) or any(b.endswith(("Model", "Block", "Layer")) for b in bases)


def check(ctx):
    # model code only: methods of nn.Module / ModelMixin classes (loaders, conversion scripts and
    # pipelines legitimately read files)
    model_classes = [cls for cls in ctx.of_type(ast.ClassDef) if _is_model_class(cls)]
    methods = [fn for cls in model_classes for fn in cls.body if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for fn in methods:
        for node in ast.walk(fn):
            if not isinstance(node, ast.Call):
                continue
            name = dotted(node.func)
            if name in LOADERS or name.endswith(".hub.load_state_dict_from_url"):
                yield node, f"{fn.name}() loads weights at run time ({name}); weights come from from_pretrained"
            elif name in ("sys.path.insert", "sys.path.append"):
                yield node, f"{fn.name}() edits sys.path at run time"


RULE = register(Rule(
    id="M005",
    name="runtime-loading",
    scope="models",
    summary="No weight loading or sys.path edits inside model code.",
    what="A call to torch.load / load_file / hub downloads, or sys.path.insert/append, inside a method of an nn.Module or ModelMixin class.",
    why="Models receive their weights through from_pretrained; loading in __init__ or forward hides files from the converter, breaks offline use and device placement.",
    bad="def __init__(self):\n    self.encoder.load_state_dict(torch.load('enc.pt'))",
    good="# weights arrive via Model.from_pretrained(path)",
    anchor="models.md#no-runtime-loading",
    check=check,
    triggers=("torch.load", "load_file", "hf_hub_download", "snapshot_download", "sys.path", "load_state_dict_from_url"),
))
