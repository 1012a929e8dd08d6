from agent.checks.model_contract import contract_models, params
from agent.checks.registry import Rule, register

# Research spellings of the inputs diffusers' models name the same way across families (counted
# over diffusers 0.42.1's model forwards: none of these names is diffusers' choice for a model
# input, while `timesteps`, `mask`, `temb` and `z` are, somewhere, and are left alone).
CANONICAL = {
    "x": "hidden_states (transformers) or sample (UNets, autoencoders)",
    "xt": "hidden_states or sample",
    "x_t": "hidden_states or sample",
    "img": "hidden_states",
    "t": "timestep",
    "ts": "timestep",
    "y": "class_labels (or encoder_hidden_states for text conditioning)",
    "label": "class_labels",
    "labels": "class_labels",
    "c": "encoder_hidden_states",
    "cond": "encoder_hidden_states",
    "context": "encoder_hidden_states",
    "txt": "encoder_hidden_states",
}


def check(ctx):
    for cls, fn in contract_models(ctx):
        research = [p for p in params(fn) if p in CANONICAL]
        if research:
            renames = ", ".join(f"`{p}` -> {CANONICAL[p]}" for p in research)
            yield fn, f"{cls.name}.forward uses research argument names where diffusers has canonical ones: {renames}"


RULE = register(Rule(
    id="M014",
    name="forward-argument-names",
    scope="models",
    summary="A model's forward names its inputs the way diffusers' models do.",
    what="A denoiser or autoencoder model class whose forward takes an input under a research name diffusers never uses for a model input (x, t, y, c, cond, context, img, txt, labels, ...) where diffusers has a canonical one (hidden_states/sample, timestep, class_labels, encoder_hidden_states).",
    why="Pipelines, guiders, caching hooks and context-parallel plans call models by keyword (`transformer(hidden_states=..., timestep=..., encoder_hidden_states=...)`); a research name makes every one of them fail or need a special case.",
    bad="def forward(self, x, t, y, return_dict: bool = True): ...",
    good="def forward(self, hidden_states, timestep, class_labels, return_dict: bool = True): ...",
    anchor="models.md#outputs",
    check=check,
    triggers=("ModelMixin",),
))
