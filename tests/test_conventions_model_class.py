"""Model-class conventions: the docstring from the reference's own words, diffusers' gradient
checkpointing branch (gradients equal with it on and off, and it really checkpoints), the
capability flags tied to what exists, and where none of it must be added."""

import torch
from conventions_sources import TOY, TOY_CONFIG, load, parse, toy_inputs, toy_target

from agent.porting.conventions.cstutil import method, top_class
from agent.porting.conventions.docstrings import argument_docs
from agent.porting.conventions.docstrings import parse as parse_doc
from agent.porting.conventions.model_class import model_class_conventions, skip_casting_patterns


def _run(src, renames=None, per_head=None, without=None, **target):
    module = parse(src)
    cls = top_class(module, toy_target(**target).class_name)
    docs = argument_docs(cls, method(cls, "__init__"))
    out, report = model_class_conventions(module, toy_target(**target), docs, renames or {}, per_head or {}, without)
    return out.code, report


def test_docstring_styles_are_read():
    assert parse_doc(":param depth: how many\n    blocks.\n:return: x")[1] == {"depth": "how many blocks."}
    summary, docs = parse_doc("A model.\n\nArgs:\n    depth (int): how many\n        blocks.\n    width: size\n\nReturns:\n    y")
    assert summary == "A model." and docs == {"depth": "how many blocks.", "width": "size"}


def test_toy_docstring_checkpointing_and_flags():
    code, report = _run(TOY, modules=[{"name": "t_embedder", "castable": True}, {"name": "y_embedder", "castable": True},
                                      {"name": "blocks.0.adaLN_modulation", "castable": True}, {"name": "norm_out", "castable": False}])
    assert "    A toy DiT.\n\n    Parameters:\n        input_size (`int`, defaults to `8`):\n            Side of the input." in code
    assert "depth (`int`, defaults to `2`):\n            How many blocks." in code
    assert "hidden_size (`int`, defaults to `32`):\n            The reference's `hidden_size` argument (the reference code does not describe it)." in code
    assert "    _supports_gradient_checkpointing = True\n    _no_split_modules = ['Block']\n" in code
    assert "_skip_layerwise_casting_patterns = ['t_embedder', 'y_embedder', 'adaLN_modulation']" in code
    assert "if torch.is_grad_enabled() and self.gradient_checkpointing:\n                h = self._gradient_checkpointing_func(block, h, c, 1.0)" in code
    assert "super().__init__()\n        self.gradient_checkpointing = False" in code
    assert report.data["checkpointed_loops"] == {"blocks": 1}

    model = load(code).ToyModel(**TOY_CONFIG)
    model.load_state_dict(load(TOY).ToyModel(**TOY_CONFIG).state_dict())

    def grads():
        model.zero_grad(set_to_none=True)
        model(**toy_inputs()).square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    off = grads()
    model.enable_gradient_checkpointing()
    calls = []
    inner = model._gradient_checkpointing_func
    model._gradient_checkpointing_func = lambda *a: calls.append(1) or inner(*a)
    on = grads()
    assert len(calls) == TOY_CONFIG["depth"]
    assert off.keys() == on.keys() and all(torch.equal(off[k], on[k]) for k in off)


def test_per_head_argument_documented_with_its_origin():
    src = "class ToyModel:\n    def __init__(self, attention_head_dim=8, num_attention_heads=4):\n        pass\n"
    code, _ = _run(src, renames={"num_heads": "num_attention_heads"}, per_head={"hidden_size": ["attention_head_dim", "num_heads"]})
    assert "The reference's `hidden_size` is `num_attention_heads * attention_head_dim`." in " ".join(code.split())


def test_nothing_claimed_without_the_code_behind_it():
    src = '''
    import torch


    class ToyModel(torch.nn.Module):
        def __init__(self, depth=2):
            super().__init__()
            self.layers = [torch.nn.Linear(2, 2) for _ in range(depth)]  # a plain list, not a ModuleList
            self.stack = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

        def forward(self, x, **kw):
            for layer in self.layers:
                x = layer(x)
            for layer in self.stack:
                x = layer(x, **kw)  # star arguments: not made positional
            return x
    '''
    code, report = _run(src)
    assert "_supports_gradient_checkpointing" not in code and "gradient_checkpointing" not in code
    assert "_no_split_modules" not in code  # torch.nn.Linear is not a block of this file
    skipped = {s["what"]: s["reason"] for s in report.skipped}
    assert "keyword or star" in skipped["gradient checkpointing in the self.stack loop"]
    assert "module names are unknown" in skipped["_skip_layerwise_casting_patterns"]

    code, report = _run(TOY, without="left out: gradients differed")
    assert "_supports_gradient_checkpointing" not in code and "self.gradient_checkpointing" not in code
    assert "_no_split_modules = ['Block']" in code


def test_blocks_imported_from_diffusers_are_not_split():
    src = '''
    import torch
    from diffusers.models.transformers.transformer_flux import FluxSingleTransformerBlock as Single
    from ..attention import BasicTransformerBlock
    from other_package import ForeignBlock


    class ToyModel(torch.nn.Module):
        def __init__(self, depth=2):
            super().__init__()
            self.singles = torch.nn.ModuleList([Single(8, 2, 4) for _ in range(depth)])
            self.basics = torch.nn.ModuleList([BasicTransformerBlock(8, 2, 4) for _ in range(depth)])
            self.foreign = torch.nn.ModuleList([ForeignBlock() for _ in range(depth)])

        def forward(self, x):
            for block in self.singles:
                x = block(x)
            for block in self.basics:
                x = block(x)
            for block in self.foreign:
                x = block(x)
            return x
    '''
    code, _ = _run(src)
    # the class's own name (what accelerate compares), not the local alias; not the third-party block
    assert "_no_split_modules = ['BasicTransformerBlock', 'FluxSingleTransformerBlock']" in code


def test_keywords_placed_by_the_block_signature():
    src = '''
    import torch


    class Block(torch.nn.Module):
        def forward(self, x, c=None, scale=2.0, extra=None):
            return x


    class ToyModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block()])

        def forward(self, x):
            for i, block in enumerate(self.blocks):
                x = block(x, extra=i)
            return x
    '''
    code, _ = _run(src)
    assert "self._gradient_checkpointing_func(block, x, None, 2.0, i)" in code


def test_casting_patterns_only_where_something_would_be_cast():
    modules = [
        {"name": "", "castable": False}, {"name": "pos_embed", "castable": False},  # a buffer holder: nothing to cast
        {"name": "time_embed", "castable": False}, {"name": "time_embed.0", "castable": True},
        {"name": "blocks.0.norm1", "castable": False}, {"name": "blocks.0.norm1.linear", "castable": True},
        {"name": "blocks.0.adaLN_modulation", "castable": False}, {"name": "blocks.0.adaLN_modulation.1", "castable": True},
        {"name": "final.norm", "castable": False},
    ]
    assert skip_casting_patterns(modules) == ["time_embed", "norm", "adaLN_modulation"]
    assert skip_casting_patterns([{"name": "blocks.0.norm1", "castable": False}]) == []
