import ast

from agent.checks.registry import Rule, register


def _backend_aware(ctx, cls: ast.ClassDef | None) -> bool:
    """A processor or attention module users can switch backends on (it carries `_attention_backend`)."""
    if cls is None:
        return False
    if ctx.classes.attr(cls, "_attention_backend") is not None or ctx.classes.inherits(cls, "AttentionModuleMixin"):
        return True
    return any(
        n.attr == "_attention_backend" and isinstance(n.value, ast.Name) and n.value.id == "self"
        for n in ctx.inside(cls, ast.Attribute)
    )


def check(ctx):
    if any(isinstance(n, ast.FunctionDef) and n.name == "dispatch_attention_fn" for n in ctx.tree.body):
        return  # the dispatcher itself
    for node in ctx.of_type(ast.Call):
        if ctx.names.qualify(node.func).split(".")[-1] != "dispatch_attention_fn":
            continue
        cls = ctx.class_at(node)
        if not _backend_aware(ctx, cls):
            continue
        backend = next((k for k in node.keywords if k.arg == "backend"), None)
        if any(k.arg is None for k in node.keywords):
            continue  # **kwargs may carry it
        if backend is None:
            yield node, f"{cls.name} calls dispatch_attention_fn without backend=: set_attention_backend() has no effect on it"
        elif isinstance(backend.value, ast.Constant) and not (
            isinstance(backend.value.value, str) and backend.value.value.lower() in cls.name.lower()
        ):  # a processor named for its backend (`...FlexAttnProcessor` with "flex") requires it by design
            yield node, f"{cls.name} calls dispatch_attention_fn with backend={backend.value.value!r}: set_attention_backend() has no effect on it"


RULE = register(Rule(
    id="M011",
    name="attention-backend-passed",
    scope="models",
    summary="A processor's dispatch_attention_fn call passes the configured backend.",
    what="A dispatch_attention_fn call inside a processor or attention class that has an `_attention_backend`, without `backend=` or with a constant backend.",
    why="set_attention_backend() stores the choice on the processor; a call that does not pass it on runs the default backend while the user believes another one is active.",
    bad="hidden_states = dispatch_attention_fn(query, key, value, attn_mask=attention_mask)",
    good="hidden_states = dispatch_attention_fn(\n    query, key, value, attn_mask=attention_mask, backend=self._attention_backend, parallel_config=self._parallel_config\n)",
    anchor="models.md#attention-dispatch",
    check=check,
    triggers=("dispatch_attention_fn",),
))
