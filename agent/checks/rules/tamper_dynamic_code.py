import ast

from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, find

BANNED = (
    "builtins.exec", "builtins.eval", "builtins.compile", "builtins.__import__", "builtins.breakpoint", "importlib",
    "runpy", "code", "codeop", "types.CodeType", "types.FunctionType", "pkgutil", "zipimport",
)
# Modules through which a computed attribute name reaches anything.
SENSITIVE = ("builtins", "sys", "os", "importlib", "torch", "inspect", "gc")


def check(ctx):
    for node, name in find(ctx, BANNED):
        yield node, f"uses {name}: a model file may not run code it builds or imports by name"
    for node in ctx.of_type(ast.Call):
        if ctx.names.qualify(node.func) == "builtins.getattr" and len(node.args) >= 2:
            name = node.args[1]
            target = ctx.names.qualify(node.args[0])
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) and target.split(".")[0] in SENSITIVE:
                yield node, f"getattr({target}, <computed name>): a model file may not look up module members by computed names"


RULE = register(Rule(
    id="T003",
    name="tamper-dynamic-code",
    scope="port",
    summary="A port's model file does not build, evaluate or import code at run time.",
    what="`exec`, `eval`, `compile` (the builtin), `__import__`, `importlib`, `runpy`, code objects, or `getattr` of a sensitive module with a computed name, under any alias.",
    why="Code assembled at run time escapes every static check, including these: what runs is not what was reviewed.",
    bad="fn = eval('lambda x: x * 0 + ref')",
    good="def forward(self, x):\n    return self.proj(x)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
