import ast
import re
from pathlib import Path

from agent.checks import indexes
from agent.checks.model_contract import in_model_folder
from agent.checks.registry import Rule, register
from agent.checks.tree import installed_root, read_init, resolved

# diffusers' shared building-block modules (under models/): a class they define is what a reader
# of any diffusers model takes the name to mean.
SHARED_MODULES = (
    "attention.py", "attention_processor.py", "embeddings.py", "normalization.py", "resnet.py", "activations.py",
    "downsampling.py", "upsampling.py", "modeling_outputs.py", "unets/unet_2d_blocks.py", "transformers/transformer_2d.py",
)
_TOP_CLASS = re.compile(r"^class[ \t]+(\w+)", re.M)



def _shared(ctx, root: Path) -> dict[str, Path]:
    """Class name -> the shared module defining it (deprecation shims that hand the name over to
    a model file, `FluxPosEmbed` in embeddings.py, left out: the model file holds the real one)."""
    paths = [root / "models" / rel for rel in SHARED_MODULES]
    for path in paths:
        ctx.deps.add(str(resolved(path)))  # what read_other records, without reading per file
    return indexes._memo(("shared-classes", str(root)), lambda: _shared_classes(ctx, paths))


def _shared_classes(ctx, paths: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in paths:
        text = ctx.read_other(path) if path.is_file() else None
        blocks = _TOP_CLASS.split(text or "")  # [before, name, body, name, body, ...]
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            if not re.search(rf"\bdeprecate\(\s*[\"']{name}[\"']", body):
                out.setdefault(name, path)
    return out


def _is_shim(ctx, cls: ast.ClassDef) -> bool:
    """A deprecated alias kept for old imports: it calls `deprecate("<its own name>", ...)`."""
    return any(
        isinstance(n, ast.Call) and ctx.names.qualify(n.func).split(".")[-1] == "deprecate"
        and n.args and isinstance(n.args[0], ast.Constant) and n.args[0].value == cls.name
        for n in ctx.inside(cls, ast.Call)
    )


def _exported(ctx, root: Path) -> set[str]:
    """Class-like names diffusers exports at its top level."""
    top = read_init(ctx, root / "__init__.py")
    return {n for n in (top.structure if top else {}) if n[:1].isupper()}


def _definitions(ctx, root: Path, name: str) -> int:
    """How many files of the tree define a top-level class `name` (dummy objects left out)."""
    counts = indexes._memo(("top-class-counts", str(root)), lambda: _count_top_classes(root))
    ctx.depend(f"tree:{root}")
    return counts.get(name, 0)


def _count_top_classes(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for path, text in indexes._texts(root):
        if path.name.startswith("dummy_"):
            continue  # the placeholders diffusers exports when a backend is missing
        for name in set(_TOP_CLASS.findall(text)):
            out[name] = out.get(name, 0) + 1
    return out


def check(ctx):
    if not in_model_folder(ctx):
        return
    root = ctx.root or installed_root()
    if root is None:
        return
    shared, exported = _shared(ctx, root), _exported(ctx, root)
    here = resolved(ctx.path)
    local_classes = {c.name for c in ctx.tree.body if isinstance(c, ast.ClassDef)}
    for stmt in ctx.tree.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Name) and stmt.value.id in local_classes:
            names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]  # `Attention = MyAttention`
        elif isinstance(stmt, ast.ClassDef) and not _is_shim(ctx, stmt):
            names = [stmt.name]
        else:
            continue
        for message in _shadows(ctx, root, shared, exported, here, names):
            yield stmt, message


def _shadows(ctx, root: Path, shared: dict[str, Path], exported: set[str], here: Path, names: list[str]):
    for name in names:
        if name in shared:
            if resolved(shared[name]) == here:
                continue  # the definition itself
            where = f"diffusers' {name} (models/{shared[name].relative_to(root / 'models').as_posix()})"
        elif name in exported:
            if ctx.root is not None and _definitions(ctx, root, name) <= 1:
                continue  # the exported class is this one
            where = f"diffusers' exported {name}"
        else:
            continue
        yield f"class {name} shadows {where}: a reader, or an import added later, takes it for diffusers' own; give it the model's prefix"


RULE = register(Rule(
    id="M017",
    name="class-name-shadow",
    scope="models",
    summary="A model file's classes do not reuse the names of diffusers' building blocks or public classes.",
    what="A top-level class in a model file named like a class of diffusers' shared model modules (attention, attention_processor, embeddings, normalization, resnet, activations, down/upsampling, modeling_outputs, unet_2d_blocks, transformer_2d) or like a class diffusers exports at its top level, other than that class's own definition.",
    why="`Attention`, `FeedForward` or `UNet2DModel` mean diffusers' classes to every reader and to `from diffusers... import`; a same-named local class with other arguments and weights is misread in review and collides when the file later imports the real one. diffusers prefixes model-specific classes (FluxAttention, WanAttention).",
    bad="class Attention(nn.Module):\n    ...",
    good="class MyModelAttention(nn.Module, AttentionModuleMixin):\n    ...",
    anchor="models.md#model-class",
    check=check,
    triggers=("class ",),
))
