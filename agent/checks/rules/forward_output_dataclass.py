from agent.checks.model_contract import OUTPUT, UNKNOWN, ReturnKinds, contract_models, returns
from agent.checks.registry import Rule, register


def check(ctx):
    for cls, fn in contract_models(ctx):
        kinds = ReturnKinds(ctx, cls)
        found = [kinds.of(r.value, fn) for r in returns(fn)]
        seen = set().union(*found) if found else set()
        if not found or OUTPUT in seen or UNKNOWN in seen:
            continue
        what = "a tuple" if seen == {"tuple"} else "a bare tensor or tuple"
        yield fn, f"{cls.name}.forward returns {what} on every path: with return_dict=True it should return an output dataclass (a BaseOutput subclass such as Transformer2DModelOutput)"


RULE = register(Rule(
    id="M013",
    name="forward-output-dataclass",
    scope="models",
    summary="A model's forward returns an output dataclass when return_dict is True.",
    what="A denoiser or autoencoder model class whose forward never returns an output dataclass (a BaseOutput subclass, by name or same-file lineage): every return is a tensor, a tuple, or a same-class/same-file helper returning those. Returned values are followed through variables, import aliases and helpers; a return the file cannot see into (super(), an imported function) is given the benefit of the doubt.",
    why="The output dataclass is the model's public result type: `.sample` works for users, `return_dict=False` gives the tuple pipelines index, and both stay stable when fields are added. A bare tensor breaks every caller written against diffusers' models.",
    bad="def forward(self, hidden_states, timestep, return_dict: bool = True):\n    ...\n    return output",
    good="    if not return_dict:\n        return (output,)\n    return Transformer2DModelOutput(sample=output)",
    anchor="models.md#outputs",
    check=check,
    triggers=("ModelMixin",),
))
