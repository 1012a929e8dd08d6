import ast

from agent.checks.registry import Rule, register

LOADERS = {
    "torch.load", "safetensors.torch.load_file", "safetensors.torch.load", "safetensors.safe_open",
    "huggingface_hub.hf_hub_download", "huggingface_hub.snapshot_download", "torch.hub.load_state_dict_from_url",
    "torch.hub.load", "numpy.load",
}
# literal text only (a regular expression over every file costs seconds on diffusers)
_HINTS = ("torch.load", "load_file", "hf_hub_download", "snapshot_download", "sys.path", "safe_open",
          "load_state_dict_from_url", "import load", "load as", ", load", "np.load", "numpy.load")
# Most hints contain "load": each place "load" occurs is compared with them there, instead of
# searching the whole text once per hint (the same answer as `any(h in source for h in _HINTS)`).
_AROUND_LOAD = tuple((h, h.index("load")) for h in _HINTS if "load" in h)
_OTHER_HINTS = tuple(h for h in _HINTS if "load" not in h)
PATH_EDITS = {"sys.path.insert", "sys.path.append", "sys.path.extend"}


def _has_hint(source: str) -> bool:
    if any(h in source for h in _OTHER_HINTS):
        return True
    at = source.find("load")
    while at != -1:
        if any(at >= offset and source.startswith(h, at - offset) for h, offset in _AROUND_LOAD):
            return True
        at = source.find("load", at + 1)
    return False


def _loader(q: str) -> bool:
    return q in LOADERS or q.endswith((".load_state_dict_from_url", ".hf_hub_download", ".snapshot_download")) or q in ("load_file", "hf_hub_download")


def check(ctx):
    # model code only: methods of nn.Module / ModelMixin classes (loaders, conversion scripts and
    # pipelines legitimately read files)
    for cls in ctx.classes.all:
        if not ctx.classes.is_model(cls) or ctx.classes.is_pipeline(cls):
            continue
        for fn in ctx.classes.methods(cls).values():
            if fn.name.lstrip("_").startswith(("from_pretrained", "from_single_file", "load", "save")):
                continue  # loading weights is what these methods are for
            for node in ctx.inside(fn, ast.Call):
                q = ctx.names.qualify(node.func)
                if _loader(q):
                    yield node, f"{fn.name}() loads weights at run time ({q}); weights come from from_pretrained"
                elif q in PATH_EDITS:
                    yield node, f"{fn.name}() edits sys.path at run time"


RULE = register(Rule(
    id="M005",
    name="runtime-loading",
    scope="models",
    summary="No weight loading or sys.path edits inside model code.",
    what="A call to torch.load / safetensors loading / hub downloads (under any alias), or sys.path.insert/append, inside a method of an nn.Module or ModelMixin class.",
    why="Models receive their weights through from_pretrained; loading in __init__ or forward hides files from the converter, breaks offline use and device placement.",
    bad="def __init__(self):\n    self.encoder.load_state_dict(torch.load('enc.pt'))",
    good="# weights arrive via Model.from_pretrained(path)",
    anchor="models.md#no-runtime-loading",
    check=check,
    prefilter=_has_hint,
))
