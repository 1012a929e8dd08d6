import ast

from agent.checks.astutil import own_nodes
from agent.checks.model_contract import contract_models
from agent.checks.registry import Rule, register


def _module_lists(ctx, cls: ast.ClassDef) -> set[str]:
    """self.<name> attributes the class builds as nn.ModuleList (its repeated blocks)."""
    out = set()
    for c in ctx.classes.lineage(cls):
        init = ctx.classes.methods(c).get("__init__")
        local: set[str] = set()  # `blocks = nn.ModuleList(...)`, later `self.blocks = blocks`
        for node in sorted((n for n in own_nodes(init) if isinstance(n, ast.Assign)), key=lambda n: n.lineno) if init is not None else ():
            value = node.value
            is_list = isinstance(value, ast.Call) and (ctx.names.qualify(value.func) or getattr(value.func, "attr", "")).split(".")[-1] == "ModuleList"
            is_list = is_list or isinstance(value, ast.Name) and value.id in local
            if not is_list:
                continue
            for t in node.targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                    out.add(t.attr)
                elif isinstance(t, ast.Name):
                    local.add(t.id)
    return out


def _loops_over(fn, lists: set[str]) -> str | None:
    """The first ModuleList the function iterates (`for b in self.blocks`, through enumerate/zip)."""
    for node in own_nodes(fn):
        if isinstance(node, (ast.For, ast.comprehension)):
            for sub in ast.walk(node.iter):
                if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id == "self" and sub.attr in lists:
                    return sub.attr
    return None


def _external_model_base(ctx, cls: ast.ClassDef) -> bool:
    """A base from another file that is not a mixin: it may declare the flag itself."""
    names = ctx.classes.ancestors(cls)
    return any(n not in ctx.classes.by_name and not n.endswith("Mixin") and n not in ("Module", "object") for n in names)


def check(ctx):
    for cls, fn in contract_models(ctx):
        flag = ctx.classes.attr(cls, "_supports_gradient_checkpointing")
        if flag is not None or _external_model_base(ctx, cls):
            continue  # declared (True or False: a decision either way), or inherited from elsewhere
        lists = _module_lists(ctx, cls)
        helpers = [m for name, m in ctx.classes.methods(cls).items() if name != "__init__"]
        looped = next((x for x in (_loops_over(m, lists) for m in [fn, *helpers]) if x), None)
        if looped:
            yield cls, f"{cls.name} runs repeated blocks (self.{looped}) but does not declare _supports_gradient_checkpointing: enable_gradient_checkpointing() raises on it"


RULE = register(Rule(
    id="M016",
    name="gradient-checkpointing-support",
    scope="models",
    summary="A model that loops over repeated blocks declares gradient checkpointing.",
    what="A denoiser or autoencoder model class whose forward (or one of its methods) iterates an nn.ModuleList of blocks it builds, with no _supports_gradient_checkpointing attribute in its same-file lineage (M007 checks that a declared True is backed by the branch).",
    why="Fine-tuning diffusers' models relies on enable_gradient_checkpointing(); ModelMixin refuses it for a class that does not declare support, so training a large port runs out of memory. Declaring False states the decision for an inference-only port.",
    bad="class MyTransformer2DModel(ModelMixin, ConfigMixin):\n    def forward(self, hidden_states, ...):\n        for block in self.transformer_blocks:\n            hidden_states = block(hidden_states, temb)",
    good="class MyTransformer2DModel(ModelMixin, ConfigMixin):\n    _supports_gradient_checkpointing = True\n    ...\n        for block in self.transformer_blocks:\n            if torch.is_grad_enabled() and self.gradient_checkpointing:\n                hidden_states = self._gradient_checkpointing_func(block, hidden_states, temb)\n            else:\n                hidden_states = block(hidden_states, temb)",
    anchor="models.md#capability-flags",
    check=check,
    triggers=("ModelMixin",),
))
