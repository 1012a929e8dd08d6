import ast

from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, find

# `inspect.signature` / `inspect.is*` / `inspect.Parameter` stay allowed: diffusers' attention
# classes filter processor kwargs with them. What reaches frames, sources or modules is refused.
BANNED = (
    "inspect.stack", "inspect.currentframe", "inspect.getouterframes", "inspect.getinnerframes", "inspect.getframeinfo",
    "inspect.trace", "inspect.getmodule", "inspect.getsource", "inspect.getsourcelines", "inspect.getsourcefile",
    "inspect.getfile", "inspect.getmembers", "inspect.getmembers_static", "inspect.getclosurevars", "inspect.getargvalues",
    "inspect.getgeneratorlocals", "inspect.getcoroutinelocals", "inspect.getattr_static", "inspect.unwrap", "gc", "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile", "sys.gettrace",
    "sys.getprofile", "sys.modules", "sys.exc_info", "sys.exception", "traceback.extract_stack", "traceback.walk_stack",
    "traceback.walk_tb", "traceback.format_stack", "traceback.print_stack", "traceback.StackSummary", "threading.settrace",
    "threading.setprofile", "builtins.globals", "builtins.__builtins__",
)
FRAME_ATTRS = {
    "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next", "gi_frame", "cr_frame",
    "ag_frame", "__globals__", "__code__", "__closure__", "__subclasses__", "__builtins__", "__self__", "__func__",
}


def _lazy_module_idiom(ctx, node) -> bool:
    """diffusers' lazy `__init__` boilerplate: `sys.modules[__name__] = _LazyModule(...)`,
    `globals()["__file__"]`."""
    line = ctx.lines[node.lineno - 1] if 0 < node.lineno <= len(ctx.lines) else ""
    return "sys.modules[__name__]" in line and "_LazyModule" in ctx.source or 'globals()["__file__"]' in line


def check(ctx):
    for node, name in find(ctx, BANNED):
        if name in ("sys.modules", "builtins.globals") and _lazy_module_idiom(ctx, node):
            continue
        yield node, f"uses {name}: a model file may not inspect its callers, frames or other modules"
    for node in ctx.of_type(ast.Attribute):
        if node.attr in FRAME_ATTRS:
            yield node, f"reads .{node.attr}: a model file may not reach frames, globals or code objects"
    for node in ctx.of_type(ast.Name):
        if node.id == "__builtins__":
            yield node, "uses __builtins__: a model file may not reach the interpreter's builtins"


RULE = register(Rule(
    id="T002",
    name="tamper-introspection",
    scope="port",
    summary="A port's model file does not inspect frames, callers or other modules.",
    what="`inspect`'s frame, source and module functions (`stack`, `currentframe`, `getsource`, `getmodule`, ...), `gc`, `sys._getframe` (also through `from sys import _getframe`, `getattr(sys, \"_getframe\")` or an alias), `sys.modules`, trace/profile hooks, traceback stack walking, or frame and code attributes (`f_back`, `f_globals`, `__globals__`, `__subclasses__`, ...).",
    why="Through the caller's frame a model can find the harness's variables (the reference output, the tolerance) and behave correctly only while it is being judged.",
    bad="import inspect as _i\nif 'parity' in _i.stack()[1].filename:\n    return reference_like(x)",
    good="def forward(self, x):\n    return self.proj(x)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
