"""Forward and output conventions: diffusers argument names decided from the input recipe,
return_dict with the family's dataclass (or a new one for tuples), the tuple when
return_dict=False, callers inside the class kept working, and where it must not fire."""

import dataclasses
import textwrap

import pytest
import torch
from conventions_sources import TOY, TOY_CONFIG, load, parse, toy_inputs, toy_target

from agent.porting.conventions.forward import forward_conventions


def _run(src, **target):
    module, report = forward_conventions(parse(src), toy_target(**target))
    return module.code, report


def test_toy_forward_gets_diffusers_names_and_output():
    code, report = _run(TOY)
    assert report.data["forward_renames"] == {"x": "hidden_states", "t": "timestep", "y": "class_labels"}
    assert "def forward(self, hidden_states: torch.Tensor, timestep: torch.Tensor | float | int, class_labels: torch.Tensor, return_dict: bool = True)" in code
    assert "from diffusers.models.modeling_outputs import Transformer2DModelOutput" in code
    before, after = load(TOY).ToyModel(**TOY_CONFIG), load(code).ToyModel(**TOY_CONFIG)
    after.load_state_dict(before.state_dict())
    x = toy_inputs()
    renamed = {"hidden_states": x["x"], "timestep": x["t"], "class_labels": x["y"]}
    with torch.no_grad():
        expected = before(**x)
        out = after(**renamed)
        assert type(out).__name__ == "Transformer2DModelOutput" and torch.equal(out.sample, expected)
        as_tuple = after(**renamed, return_dict=False)
        assert isinstance(as_tuple, tuple) and len(as_tuple) == 1 and torch.equal(as_tuple[0], expected)
        # forward_with_cfg calls self.forward: it asks for the tuple and keeps returning a tensor
        assert "return_dict=False)[0]" in code
        assert torch.equal(before.forward_with_cfg(x["x"], x["t"], x["y"], 3.0), after.forward_with_cfg(x["x"], x["t"], x["y"], 3.0))
    assert "The [`ToyModel`] forward method." in code and "Whether to return a [`Transformer2DModelOutput`]" in code



def test_a_file_importing_only_torch_nn_gets_annotations_and_import_torch():
    # what the blocks stage can leave: `import torch.nn as nn` binds no `torch`
    src = TOY.replace("import torch\n", "", 1)
    assert "import torch.nn as nn" in src and "\nimport torch\n" not in src
    code, _ = _run(src)
    assert "\nimport torch\n" in code
    assert "hidden_states: torch.Tensor, timestep: torch.Tensor | float | int, class_labels: torch.Tensor, return_dict: bool = True" in code
    assert ") -> Transformer2DModelOutput | tuple:" in code


UNET = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.id_predictor = nn.Conv2d(4, 2, 1)

    def forward(self, x, timesteps=None, context=None, y=None, **kwargs):
        """
        :param x: an [N x C x ...] Tensor of inputs.
        :param timesteps: a 1-D batch of timesteps.
        """
        h = self.conv(x) + timesteps[:, None, None, None]
        if context is not None:
            h = h + context.mean()
        if y is not None:
            h = h * 2
        if kwargs.get("codebook"):
            return self.id_predictor(h)
        else:
            return h
'''
UNET_INPUTS = [{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}, {"name": "timesteps", "kind": "uniform", "shape": [2]},
               {"name": "context", "kind": "randn", "shape": [2, 8, 24]}]


def test_unet_names_condition_output_and_one_return_for_if_else():
    code, report = _run(UNET, class_name="Net", family="unets", inputs=UNET_INPUTS)
    assert report.data["forward_renames"] == {"x": "sample", "timesteps": "timestep", "context": "encoder_hidden_states", "y": "class_labels"}
    assert report.data["output_class"] == "UNet2DConditionOutput"
    assert "from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput" in code
    assert code.count("return UNet2DConditionOutput(sample=output)") == 1  # the final if/else assigns, one return after it
    assert "return_dict: bool = True,\n        **kwargs" in code or "return_dict: bool = True, **kwargs" in code
    assert "an [N x C x ...] Tensor of inputs." in code  # the reference's own words describe the argument
    net = load(code).Net()
    s, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    with torch.no_grad():
        assert torch.equal(net(s, t).sample, net(s, t, return_dict=False)[0])
        assert net(sample=s, timestep=t, codebook=True).sample.shape[1] == 2


def test_unet_without_conditioning_gets_unet2d_output():
    _, report = _run(UNET, class_name="Net", family="unets", inputs=UNET_INPUTS[:2])
    assert report.data["output_class"] == "UNet2DOutput"


def test_tuple_output_becomes_a_new_dataclass_with_named_fields():
    src = '''
    import torch
    import torch.nn as nn


    class Net(nn.Module):
        def forward(self, x, t):
            attn_weights = x.mean(-1)
            if t.sum() < 0:
                return x, attn_weights
            x = x * 2
            return x, attn_weights
    '''
    code, report = _run(src, class_name="Net", inputs=[{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}, {"name": "t", "kind": "uniform", "shape": [2]}],
                        output_paths=["output[0]", "output[1]"])
    assert report.data["output_fields"] == ["sample", "attn_weights"]
    mod = load(code)
    assert [f.name for f in dataclasses.fields(mod.NetOutput)] == ["sample", "attn_weights"]
    x, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    out, plain = mod.Net()(x, t), mod.Net()(x, t, return_dict=False)
    assert isinstance(plain, tuple) and torch.equal(out.sample, plain[0]) and torch.equal(out.attn_weights, plain[1])
    assert torch.equal(mod.Net()(x, -t).sample, x)  # the early return is wrapped too


@pytest.mark.parametrize("mask_name, inputs, expected", [
    ("mask", [{"name": "x", "kind": "randn", "shape": [2, 16, 32]}, {"name": "context", "kind": "randn", "shape": [2, 8, 24]},
              {"name": "mask", "kind": "mask", "shape": [2, 8]}], "encoder_attention_mask"),
    ("attn_mask", [{"name": "x", "kind": "randn", "shape": [2, 16, 32]}, {"name": "attn_mask", "kind": "mask", "shape": [2, 16]}], "attention_mask"),
    ("context_mask", [{"name": "x", "kind": "randn", "shape": [2, 16, 32]}], "encoder_attention_mask"),
])
def test_masks_named_by_the_sequence_they_cover(mask_name, inputs, expected):
    extra = ", context=None" if any(i["name"] == "context" for i in inputs) else ""
    src = f"class Net:\n    def forward(self, x{extra}, {mask_name}=None):\n        return x\n"
    _, report = _run(src, class_name="Net", inputs=inputs)
    assert report.data["forward_renames"][mask_name] == expected


def test_where_forward_conventions_must_not_fire():
    # already diffusers-shaped: nothing renamed, return_dict not added twice
    src = "class Net:\n    def forward(self, hidden_states, timestep, return_dict: bool = True):\n        return hidden_states\n"
    code, report = _run(src, class_name="Net", inputs=[])
    assert code == parse(src).code and any("already takes return_dict" in s["reason"] for s in report.skipped)

    # a dict output: not a tensor or a flat tuple, left as it is
    src = "class Net:\n    def forward(self, x):\n        return {'a': x}\n"
    code, report = _run(src, class_name="Net", inputs=[{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}], output_paths=["output['a']"])
    assert "return_dict" not in code and report.data["forward_renames"] == {"x": "hidden_states"}

    # a return on the line of its `if`: not rewritten (and said so)
    src = "class Net:\n    def forward(self, x):\n        if x is None: return x\n        return x\n"
    code, report = _run(src, class_name="Net", inputs=[{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}])
    assert "return_dict" not in code and any("one line" in s["reason"] for s in report.skipped)

    # the new name is already a local of forward: that argument keeps its name
    src = "class Net:\n    def forward(self, x, t):\n        timestep = t * 2\n        return x * timestep\n"
    code, report = _run(src, class_name="Net", inputs=[{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}, {"name": "t", "kind": "uniform", "shape": [2]}])
    assert "t" not in report.data["forward_renames"] and "timestep = t * 2" in code

    # an argument no diffusers name fits
    src = "class Net:\n    def forward(self, x, guidance_scale=1.0):\n        return x * guidance_scale\n"
    code, report = _run(src, class_name="Net", inputs=[{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}])
    assert "guidance_scale" in code and any("guidance_scale" in s["what"] for s in report.skipped)


def test_keyword_callers_inside_the_class_follow_the_renames():
    src = textwrap.dedent('''
    import torch


    class Net(torch.nn.Module):
        def forward(self, x, t):
            return x * t[:, None, None, None]

        def twice(self, x, t):
            return self(x=x, t=t) * 2
    ''')
    code, _ = _run(src, class_name="Net", inputs=[{"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]}, {"name": "t", "kind": "uniform", "shape": [2]}])
    assert "self(hidden_states=x, timestep=t, return_dict=False)[0]" in code
    x, t = torch.randn(2, 4, 8, 8), torch.rand(2)
    assert torch.equal(load(code).Net().twice(x, t), x * t[:, None, None, None] * 2)


FLUX_LIKE = '''
import torch
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.img_in = nn.Linear(4, 8)
        self.txt_in = nn.Linear(6, 8)
        self.vector_in = nn.Linear(5, 8)

    def forward(self, img, img_ids, txt, txt_ids, timesteps, y, guidance=None):
        h = self.img_in(img) + img_ids.sum(-1, keepdim=True)
        c = self.txt_in(txt).mean(1, keepdim=True) + txt_ids.sum()
        v = self.vector_in(y)[:, None] * timesteps[:, None, None]
        if guidance is not None:
            v = v * guidance[:, None, None]
        return h + c + v
'''
FLUX_FILE_INPUTS = [{"kind": "file", "origin": "--inputs flux.py", "arguments": {
    "img": {"shape": [2, 16, 4], "dtype": "float32"}, "img_ids": {"shape": [2, 16, 3], "dtype": "float32"},
    "txt": {"shape": [2, 6, 6], "dtype": "float32"}, "txt_ids": {"shape": [2, 6, 3], "dtype": "float32"},
    "timesteps": {"shape": [2], "dtype": "float32"}, "y": {"shape": [2, 5], "dtype": "float32"}}}]


def test_inputs_from_a_file_pooled_vector_and_diffusers_order():
    # the inputs came from an --inputs file: kinds are read off the tensors it returned, so the
    # float vector `y` is a pooled projection, not class labels (its name alone would say labels)
    code, report = _run(FLUX_LIKE, class_name="Net", inputs=FLUX_FILE_INPUTS)
    renames = report.data["forward_renames"]
    assert renames["y"] == "pooled_projections" and renames["timesteps"] == "timestep"
    assert renames["img"] == "hidden_states" and renames["txt"] == "encoder_hidden_states"
    signature = code[code.index("def forward(self,"):code.index(") ->")]
    names = [part.split(":")[0].split("=")[0].strip() for part in signature.removeprefix("def forward(self,").split(",") if part.strip()]
    assert names == ["hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids",
                     "guidance", "return_dict"]  # FluxTransformer2DModel's order
    before, after = load(FLUX_LIKE).Net(), load(code).Net()
    after.load_state_dict(before.state_dict())
    g = torch.Generator().manual_seed(0)
    kw = {k: torch.randn(v["shape"], generator=g) for k, v in FLUX_FILE_INPUTS[0]["arguments"].items()}
    with torch.no_grad():
        out = after(**{renames.get(k, k): v for k, v in kw.items()}).sample
        assert torch.equal(out, before(**kw))


def test_no_reorder_that_would_put_a_required_argument_after_an_optional_one():
    src = FLUX_LIKE.replace("def forward(self, img, img_ids, txt, txt_ids, timesteps, y, guidance=None)",
                            "def forward(self, img, img_ids=None, txt=None, txt_ids=None, timesteps=None, y=None, guidance=None)")
    src = src.replace("img_ids.sum(-1, keepdim=True)", "0").replace("+ txt_ids.sum()", "")
    code, report = _run(src, class_name="Net", inputs=FLUX_FILE_INPUTS)
    assert "def forward(\n        self,\n        hidden_states" in code or "def forward(self, hidden_states" in code
    assert not any(s["what"] == "forward argument order" for s in report.skipped)  # all optional after the first: reordered
    src = FLUX_LIKE.replace("def forward(self, img, img_ids, txt, txt_ids, timesteps, y, guidance=None)",
                            "def forward(self, img, img_ids, txt=None, txt_ids=None, timesteps=None, y=None, guidance=None)")
    code, report = _run(src, class_name="Net", inputs=FLUX_FILE_INPUTS)
    assert any(s["what"] == "forward argument order" for s in report.skipped)  # img_ids is required: order kept


def test_no_reorder_when_the_class_calls_its_own_forward_positionally():
    src = FLUX_LIKE.replace("        return h + c + v\n", "        return h + c + v\n\n"
                            "    def twice(self, img, img_ids, txt, txt_ids, timesteps, y):\n"
                            "        return self(img, img_ids, txt, txt_ids, timesteps, y) * 2\n")
    code, report = _run(src, class_name="Net", inputs=FLUX_FILE_INPUTS)
    assert any(s["what"] == "forward argument order" and "positionally" in s["reason"] for s in report.skipped)
    signature = code[code.index("def forward("):code.index(") ->")]
    assert signature.index("img_ids") < signature.index("encoder_hidden_states")  # the reference's order kept
