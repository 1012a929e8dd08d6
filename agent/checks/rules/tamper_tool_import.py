from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, find

TOOL = ("agent", "sandbox", "integrate")


def check(ctx):
    for node, name in find(ctx, TOOL):
        yield node, f"imports {name}, part of the tool that verifies this port: a model file may not reach its judge"


RULE = register(Rule(
    id="T001",
    name="tamper-tool-import",
    scope="port",
    summary="A port's model file does not import the tool that verifies it.",
    what="An import of `agent`, `sandbox` or `integrate` (the verifying tool's packages) in any form: a plain or aliased import, `importlib.import_module`, `__import__`, `sys.modules[...]`.",
    why="Code that can import the engine can patch the comparison or read the reference outputs, so a verdict reached with it in the process proves nothing.",
    bad="from sandbox.parity import engine\nengine.compare = lambda *a, **k: 0.0",
    good="import torch\nfrom torch import nn",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
    triggers=TOOL,
))
