import ast
import re

from agent.checks.registry import Rule, register
from agent.checks.tamper import SCOPE_ANCHOR, import_time_calls

EXACT = {
    "builtins.print", "pprint.pprint", "pprint.pp", "sys.stdout.write", "sys.stderr.write", "random.seed",
    "numpy.random.seed", "warnings.filterwarnings", "warnings.simplefilter", "warnings.resetwarnings",
    "logging.basicConfig", "logging.disable", "sys.setrecursionlimit", "atexit.register", "os.chdir", "faulthandler.enable",
}
TORCH = re.compile(
    r"^torch\.(?:"
    r"(?:[\w.]*\.)?(?:manual_seed|manual_seed_all|seed|seed_all|set_rng_state|initial_seed)"
    r"|(?:[\w.]*\.)?(?:set_\w+|use_deterministic_algorithms)"
    r"|compile|jit\.(?:script|trace|freeze)|_dynamo\.\w+|_inductor\.\w+|backends\.[\w.]+|cuda\.set_device"
    r"|autograd\.(?:set_detect_anomaly|detect_anomaly|set_grad_enabled)|_C\.\w+|hub\.\w+"
    r")$"
)


def check(ctx):
    for call in import_time_calls(ctx):
        q = ctx.names.qualify(call.func)
        if not q and isinstance(call.func, ast.Call):
            q = ctx.names.qualify(call.func.func)  # @torch.compile(mode=...)(fn)
        if q in EXACT or TORCH.match(q):
            yield call, f"calls {q} when the module is imported: a model file may not print or change global state at import"
    for stmt in ctx.tree.body:
        for deco in getattr(stmt, "decorator_list", []):
            target = deco.func if isinstance(deco, ast.Call) else deco
            q = ctx.names.qualify(target)
            if q and TORCH.match(q) and not isinstance(deco, ast.Call):
                yield deco, f"decorates {getattr(stmt, 'name', '')} with {q} at import: a model file may not compile or change global state at import"


RULE = register(Rule(
    id="T008",
    name="tamper-import-side-effects",
    scope="port",
    summary="Importing a port's model file has no side effects.",
    what="At module level, in a class body, in a decorator or a default value: `print`, seeding (`torch.manual_seed`, `random.seed`), global torch settings (`torch.set_default_dtype`, `set_grad_enabled`, `torch.backends.*`, deterministic algorithms, matmul precision), `torch.compile` / `torch.jit.script`, warning or logging configuration, `atexit`.",
    why="Importing the model must not change how anything else in the process computes: a global seed, default dtype or grad mode set at import alters the reference run sharing the process, and output at import can corrupt machine-read reports.",
    bad="import torch\ntorch.manual_seed(0)\ntorch.set_default_dtype(torch.float64)",
    good="import torch\n\nlogger = logging.get_logger(__name__)",
    anchor=SCOPE_ANCHOR,
    check=check,
    blocks_pass=True,
    default=False,
))
