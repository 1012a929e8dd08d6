import ast

from agent.checks.flow import Scope, uses
from agent.checks.model_contract import UNKNOWN, ReturnKinds, contract_models, returns
from agent.checks.registry import Rule, register


def check(ctx):
    for cls, fn in contract_models(ctx):
        names = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
        if "return_dict" not in names:
            yield fn, f"{cls.name}.forward takes no return_dict: pipelines call models with return_dict=False and read the output's fields"
            continue
        verdict = uses(fn, ["return_dict"], Scope.of(ctx, cls))["return_dict"]
        if not verdict.used:
            yield fn, f"{cls.name}.forward accepts return_dict but ignores it ({verdict.why}): it returns the same thing either way"
        elif _same_either_way(ctx, cls, fn):
            yield fn, f"{cls.name}.forward reads return_dict but returns the same kind of result on every path: return_dict=False must give a tuple, True a dataclass"


def _passed_on(fn) -> bool:
    """return_dict handed to another call (`self._forward(..., return_dict=return_dict)`)."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            values = [*node.args, *(k.value for k in node.keywords)]
            if any(isinstance(v, ast.Name) and v.id == "return_dict" for v in values):
                return True
    return False


def _same_either_way(ctx, cls, fn) -> bool:
    kinds = ReturnKinds(ctx, cls)
    seen = [kinds.of(r.value, fn) for r in returns(fn)]
    flat = set().union(*seen) if seen else set()
    return len(seen) > 1 and len(flat) == 1 and UNKNOWN not in flat and not _passed_on(fn)


RULE = register(Rule(
    id="M012",
    name="forward-return-dict",
    scope="models",
    summary="A model's forward takes return_dict and honours it.",
    what="A denoiser or autoencoder model class (a ModelMixin subclass whose own forward takes a timestep, or an autoencoder) whose forward has no return_dict parameter, or accepts one whose value never decides anything (never read, overwritten, only logged or checked).",
    why="diffusers' pipelines call every model with return_dict=False and index the tuple, and users read `.sample` from the default dataclass; a forward without the switch breaks one of the two, and one that ignores it breaks the other silently.",
    bad="def forward(self, x, t, y):\n    ...\n    return x",
    good="def forward(self, hidden_states, timestep, class_labels, return_dict: bool = True):\n    ...\n    if not return_dict:\n        return (output,)\n    return Transformer2DModelOutput(sample=output)",
    anchor="models.md#outputs",
    check=check,
    triggers=("ModelMixin",),
))
