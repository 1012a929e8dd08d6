import ast
import re

from agent.checks.astutil import derived, dotted
from agent.checks.flow import params
from agent.checks.pipelines import has_vae, is_foreign
from agent.checks.registry import Rule, register, walk

_DECODE = re.compile(r"^self\.(?:vae\w*\.(?:tiled_)?decode|_?decode_latents?|vae_decode|_decode)$")


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in walk(node))


def _latent_test(node: ast.AST, names: set[str]) -> bool:
    """A comparison of output_type (or a variable derived from it) with the string "latent"."""
    for n in walk(node):
        if isinstance(n, ast.Compare) and _mentions(n, names):
            for c in walk(n):
                if isinstance(c, ast.Constant) and c.value == "latent":
                    return True
    return False


def _always_returns(stmts: list[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Raise))


def _validated_without_latent(ctx, cls: ast.ClassDef) -> bool:
    """The pipeline checks output_type against its own list of choices, and "latent" is not one:
    a deliberate, documented limit (a protein or depth pipeline whose latents mean nothing)."""
    for fn in (ctx.classes.method(cls, "__call__"), ctx.classes.method(cls, "check_inputs")):
        if fn is None:
            continue
        for node in ctx.inside(fn, ast.Compare):
            if not (isinstance(node.left, ast.Name) and node.left.id == "output_type" and len(node.ops) == 1):
                continue
            if isinstance(node.ops[0], (ast.In, ast.NotIn)) and isinstance(node.comparators[0], (ast.Set, ast.List, ast.Tuple)):
                choices = {e.value for e in node.comparators[0].elts if isinstance(e, ast.Constant)}
                if choices and "latent" not in choices:
                    return True
    return False


def _decoders(ctx, cls: ast.ClassDef) -> set[str]:
    """Methods of the pipeline that run the VAE decode (so calling one is a decode)."""
    out = set()
    for c in ctx.classes.lineage(cls):
        for name, fn in ctx.classes.methods(c).items():
            if name != "__call__" and any(_DECODE.match(dotted(n.func)) for n in ctx.inside(fn, ast.Call)):
                out.add(name)
    return out


def _unguarded_decodes(stmts: list[ast.stmt], names: set[str], guarded: bool, decoders: frozenset = frozenset()):
    for stmt in stmts:
        if isinstance(stmt, ast.If):
            g = guarded or _mentions(stmt.test, names)
            yield from _unguarded_decodes(stmt.body, names, g, decoders)
            yield from _unguarded_decodes(stmt.orelse, names, g, decoders)
            if _latent_test(stmt.test, names) and _always_returns(stmt.body):
                guarded = True  # what follows runs only for other output types
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.AsyncFor, ast.While)):
            continue  # a decode inside a loop feeds the next step or segment, it is not the output
        nested = [getattr(stmt, f, None) or [] for f in ("body", "orelse", "finalbody")] + [h.body for h in getattr(stmt, "handlers", [])]
        if any(nested) and not isinstance(stmt, ast.Expr):
            header = [getattr(stmt, f) for f in ("test", "iter", "items", "value") if getattr(stmt, f, None) is not None]
            for h in header:
                yield from _calls_unguarded(h, names, guarded, decoders)
            for block in nested:
                yield from _unguarded_decodes(block, names, guarded, decoders)
            continue
        yield from _calls_unguarded(stmt, names, guarded, decoders)


def _calls_unguarded(node, names, guarded, decoders=frozenset()):
    if guarded:
        return
    stack = [node] if not isinstance(node, list) else list(node)
    while stack:
        n = stack.pop()
        if isinstance(n, ast.IfExp) and _mentions(n.test, names):
            continue
        if isinstance(n, ast.Call) and (_DECODE.match(dotted(n.func)) or dotted(n.func).removeprefix("self.") in decoders):
            yield n
        stack.extend(ast.iter_child_nodes(n))


def _returns_tuple(stmts: list[ast.stmt]) -> ast.Return | None:
    for s in stmts:
        for n in walk(s):
            if isinstance(n, ast.Return) and isinstance(n.value, ast.Tuple):
                return n
    return None


def check(ctx):
    for cls, call in ctx.classes.pipeline_calls():
        if is_foreign(ctx, cls) or not has_vae(ctx, cls) or _validated_without_latent(ctx, cls):
            continue  # only pipelines with a VAE have a decode that output_type="latent" skips
        ps = {a.arg: a for a in params(call)}
        # output_type handed to a sub-pipeline (combined pipelines delegate the decode); handing it to
        # the image/video processor's postprocess is not delegation
        forwards = any(
            isinstance(n, ast.Call) and any(k.arg == "output_type" for k in n.keywords)
            and "process" not in dotted(n.func) for n in ctx.inside(call, ast.Call)
        )
        if any(name in ps for name in ("output_latent", "return_latents", "output_latents")):
            continue  # latents are offered through their own argument
        if "output_type" not in ps:
            if "return_dict" in ps and not forwards:
                yield call, f"{cls.name}.__call__ has no output_type argument: callers cannot ask for latents"
        elif not forwards:
            names = derived(call, {"output_type"})
            if not _latent_test(call, names):
                yield ps["output_type"], f"{cls.name}.__call__ takes output_type but never handles output_type='latent'"
            else:
                for node in _unguarded_decodes(call.body, names, False, frozenset(_decoders(ctx, cls))):
                    yield node, f"{cls.name}.__call__ decodes with the VAE even when output_type='latent'"
        if "return_dict" in ps:
            for node in walk(call):
                if not isinstance(node, ast.If) or not _mentions(node.test, {"return_dict"}):
                    continue
                negated = isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not)
                plain = isinstance(node.test, ast.Name)
                if plain and _returns_tuple(node.body) is not None:
                    yield node, f"{cls.name}.__call__ returns a tuple when return_dict is True"
                elif negated and node.body and isinstance(node.body[-1], ast.Return) and isinstance(node.body[-1].value, ast.Call):
                    yield node, f"{cls.name}.__call__ returns an output object when return_dict is False"


RULE = register(Rule(
    id="P004",
    name="pipeline-output-type",
    scope="pipelines",
    summary="output_type='latent' skips the VAE decode, and return_dict=False returns a tuple.",
    what="A pipeline __call__ with no output_type argument, one that never compares it with 'latent', a VAE decode that also runs for output_type='latent', or a return_dict branch that returns the wrong kind.",
    why="Chaining pipelines (refiners, upscalers) and saving memory both depend on getting latents back without a decode; callers unpack tuples when they pass return_dict=False.",
    bad='image = self.vae.decode(latents).sample\nif output_type == "latent":\n    image = latents',
    good='if output_type == "latent":\n    image = latents\nelse:\n    image = self.vae.decode(latents).sample',
    anchor="pipelines.md#arguments",
    check=check,
    triggers=("def __call__",),
))
