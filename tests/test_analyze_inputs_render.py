"""The seeded inputs rendered into the parity spec and the generated test are the very tensors
the sandboxed probe made from the same recipe (sandbox/seeded_inputs.py)."""

import textwrap

import torch

from agent.render import _environment
from sandbox.seeded_inputs import make_inputs

RECIPE = [
    {"name": "x", "kind": "randn", "shape": [2, 3, 4, 8, 8], "why": "Conv3d in_channels=3 (stem)"},
    {"name": "t", "kind": "uniform", "shape": [2], "low": 0.0, "high": 1000.0, "why": "time"},
    {"name": "y", "kind": "randint", "shape": [2], "low": 0, "high": 10, "why": "Embedding num_embeddings=10"},
    {"name": "mask", "kind": "mask", "shape": [2, 6], "mode": "bool", "why": "bool mask"},
    {"name": "bias", "kind": "mask", "shape": [2, 6], "mode": "additive", "why": "additive mask"},
    {"name": "size", "kind": "value", "value": 16, "why": "int"},
    {"name": "pair", "kind": "tuple", "items": [{"kind": "randn", "shape": [2, 4]}, {"kind": "value", "value": True}], "why": "tuple"},
]


def rendered(macro, *args):
    module = _environment().get_template("parity/inputs.py.j2").module
    ns = {"torch": torch}
    exec(getattr(module, macro)(*args), ns)
    return ns


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
        elif isinstance(a[k], tuple):
            assert len(a[k]) == len(b[k]) and all(torch.equal(p, q) if isinstance(p, torch.Tensor) else p == q for p, q in zip(a[k], b[k], strict=True))
        else:
            assert a[k] == b[k]


def test_spec_and_test_render_the_tensors_the_probe_makes():
    expected = make_inputs(RECIPE, 3)
    spec = rendered("spec_inputs", RECIPE)["inputs"](3)
    assert_same(spec["reference"], expected)
    assert_same(spec["candidate"], expected)
    assert_same(rendered("test_make_inputs", RECIPE, 0)["make_inputs"](3), expected)
    mask = expected["mask"]
    assert mask.dtype == torch.bool and mask[:, 0].all() and not mask[:, -1].any()
    assert set(expected["bias"].unique().tolist()) <= {0.0, -10000.0}


def test_an_inputs_file_is_embedded_in_both_and_keeps_its_own_names():
    source = textwrap.dedent('''
        from __future__ import annotations
        import torch

        tolerance = "the author's own name, not the spec's"

        def noise(g, *shape):
            return torch.randn(*shape, generator=g)

        def inputs(seed):
            g = torch.Generator().manual_seed(seed)
            return {"reference": {"x": noise(g, 2, 3)}, "candidate": {"hidden_states": noise(g, 2, 3)}}
    ''').replace("from __future__ import annotations\n", "")
    entry = [{"kind": "file", "origin": "integrate_inputs.py", "source": source, "returns": "pair"}]
    spec = rendered("spec_inputs", entry)
    assert "tolerance" not in spec  # embedded in a function: no clash with the spec's own names
    pair = spec["inputs"](1)
    assert set(pair) == {"reference", "candidate"} and pair["reference"]["x"].shape == (2, 3)
    test = rendered("test_make_inputs", entry, 0)
    assert torch.equal(test["make_inputs"](1)["hidden_states"], pair["candidate"]["hidden_states"])

    kwargs_only = [{**entry[0], "source": source.replace('{"reference": {"x": noise(g, 2, 3)}, "candidate": {"hidden_states": noise(g, 2, 3)}}', '{"x": noise(g, 2, 3)}'), "returns": "kwargs"}]
    pair = rendered("spec_inputs", kwargs_only)["inputs"](1)
    assert torch.equal(pair["reference"]["x"], pair["candidate"]["x"])
    assert torch.equal(rendered("test_make_inputs", kwargs_only, 0)["make_inputs"](1)["x"], pair["reference"]["x"])


def test_dict_literal_form_for_the_diffusers_test_renders_both_kinds():
    module = _environment().get_template("parity/inputs.py.j2").module
    code = "g = torch.Generator().manual_seed(3)\nkwargs = {" + module.input_kwargs(RECIPE, "    ") + "\n}\n"
    ns = {"torch": torch}
    exec(code, ns)
    assert_same(ns["kwargs"], make_inputs(RECIPE, 3))
    assert module.author_definitions(RECIPE) == ""
    source = "import torch\n\n\ndef inputs(seed):\n    return {'x': torch.full((2,), float(seed))}\n"
    entry = [{"kind": "file", "origin": "integrate_inputs.py", "source": source, "returns": "kwargs"}]
    ns = {"torch": torch}
    exec(module.author_definitions(entry) + "\ng = torch.Generator().manual_seed(5)\nkwargs = {" + module.input_kwargs(entry, "    ") + "\n}\n", ns)
    assert ns["kwargs"]["x"].tolist() == [5.0, 5.0]


def test_an_inputs_file_feeds_the_port_under_the_renamed_forward_arguments():
    """After the conventions stage renamed the forward (x -> hidden_states), both generated tests
    rename the inputs file's keyword arguments as it runs; the reference's names stay in the file."""
    module = _environment().get_template("parity/inputs.py.j2").module
    source = "import torch\n\n\ndef inputs(seed):\n    return {'x': torch.full((2,), float(seed)), 'y': torch.tensor([1, 2])}\n"
    entry = [{"kind": "file", "origin": "integrate_inputs.py", "source": source, "returns": "kwargs", "renames": {"x": "hidden_states"}}]
    made = rendered("test_make_inputs", entry, 0)["make_inputs"](4)
    assert set(made) == {"hidden_states", "y"} and made["hidden_states"].tolist() == [4.0, 4.0]
    ns = {"torch": torch}
    exec(module.author_definitions(entry) + "\ng = torch.Generator().manual_seed(5)\nkwargs = {" + module.input_kwargs(entry, "    ") + "\n}\n", ns)
    assert set(ns["kwargs"]) == {"hidden_states", "y"} and ns["kwargs"]["hidden_states"].tolist() == [5.0, 5.0]
    pair = [{**entry[0], "returns": "pair",
             "source": source.replace("return {", "return {'reference': {}, 'candidate': {").replace("])}\n", "])}}\n")}]
    assert set(rendered("test_make_inputs", pair, 0)["make_inputs"](1)) == {"hidden_states", "y"}
