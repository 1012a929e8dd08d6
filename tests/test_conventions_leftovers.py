"""Research leftovers: prints, asserts (ValueError at the API edge, dropped inside blocks), omegaconf
conversions, torch version checks, unreachable definitions; and what must stay."""

import pytest
import torch
from conventions_sources import TOY, TOY_CONFIG, load, parse, toy_inputs, toy_target

from agent.porting.conventions.leftovers import remove_leftovers


def _run(src, **target):
    module, report = remove_leftovers(parse(src), toy_target(**target))
    return module.code, report


def test_toy_leftovers():
    code, report = _run(TOY)
    assert "print(" not in code
    assert 'if hidden_size % num_heads != 0:\n            raise ValueError("heads must divide the width")' in code
    assert "if x.ndim != 4:\n            raise ValueError('expected x.ndim == 4')" in code  # the model's forward: the API edge
    assert "assert x.shape[-1] == c.shape[-1]" not in code  # inside a block: construction guarantees it
    assert "unused_helper" not in code
    text = " ".join(report.changes)
    assert "removed 1 print" in text and "2 assert(s)" in text and "dropped 1 internal" in text and "unused_helper" in text
    model = load(code).ToyModel(**TOY_CONFIG)
    with pytest.raises(ValueError, match="heads must divide"):
        load(code).ToyModel(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="x.ndim == 4"):
        model(torch.randn(2, 16, 4), torch.rand(2), torch.zeros(2, dtype=torch.long))
    reference = load(TOY).ToyModel(**TOY_CONFIG)
    model.load_state_dict(reference.state_dict())
    with torch.no_grad():
        assert torch.equal(model(**toy_inputs()), reference(**toy_inputs()))


def test_what_stays():
    src = '''
    import torch


    def report(x):
        log = print  # print as a value, not a call statement
        log(x)


    class Block(torch.nn.Module):
        REGISTRY = {"a": None}

        def forward(self, x):
            assert self.check(x), "checked by a method: may do anything"
            return x


    class ToyModel(torch.nn.Module):
        def forward(self, x):
            report(x)
            return Block()(x)
    '''
    code, report = _run(src)
    assert "log = print" in code and "log(x)" in code
    assert "assert self.check(x)" in code and any("side effects" in s["reason"] for s in report.skipped)
    assert "def report" in code and "class Block" in code  # reachable from the model


def test_omegaconf_conversion_dropped_only_when_it_is_all_there_is():
    src = '''
    class ToyModel:
        def __init__(self, context_dim=None):
            if context_dim is not None:
                from omegaconf.listconfig import ListConfig

                if type(context_dim) == ListConfig:
                    context_dim = list(context_dim)
            self.context_dim = context_dim
    '''
    code, report = _run(src)
    assert "omegaconf" not in code and "ListConfig" not in code and "self.context_dim = context_dim" in code
    assert "if context_dim is not None:\n            pass" in code
    assert any("omegaconf" in c for c in report.changes)

    kept = src.replace("self.context_dim = context_dim", "self.kind = ListConfig")
    code, report = _run(kept)
    assert "from omegaconf.listconfig import ListConfig" in code
    assert any("omegaconf" in s["what"] for s in report.skipped)


@pytest.mark.parametrize("test, folded, body", [
    ('torch.__version__ >= "1.13"', True, "fast()"),
    ('version.parse(torch.__version__) >= version.parse("2.0.0")', True, "fast()"),
    ('hasattr(torch.nn.functional, "scaled_dot_product_attention")', True, "fast()"),
    ('torch.__version__ < "1.12"', True, "slow()"),
    ('torch.__version__ >= "2.5"', False, None),  # newer than diffusers' minimum: not decided
    ('hasattr(torch, "compile")', False, None),
])
def test_version_checks(test, folded, body):
    src = f'''
    import torch
    from packaging import version


    def fast():
        return 1


    def slow():
        return 2


    class ToyModel:
        def forward(self):
            if {test}:
                return fast()
            else:
                return slow()
    '''
    code, report = _run(src)
    if folded:
        assert "if " not in code.split("def forward")[1] and f"return {body}" in code
        assert any("version check" in c for c in report.changes)
    else:
        assert f"if {test}:" in code


def test_unreachable_definitions_removed_reachable_kept():
    src = '''
    import math

    CONSTANT = 3


    def used_by_constant():
        return 1


    TABLE = {"f": used_by_constant}


    def helper():
        return math.pi


    def dead():
        return helper()


    class Dead:
        pass


    class ToyModel:
        def forward(self, x):
            return x * helper() * TABLE["f"]()
    '''
    code, report = _run(src)
    assert "def dead" not in code and "class Dead" not in code
    assert "def helper" in code and "def used_by_constant" in code and "import math" in code
