"""Class names that shadow diffusers' building blocks get the model's prefix; everything else
(attributes, keywords, imports, names diffusers does not have) keeps its spelling."""

from conventions_sources import TOY, TOY_CONFIG, load, parse, toy_target

from agent.porting.conventions.class_names import diffusers_class_names, unshadow_class_names


def _run(src, taken=None, **target):
    module, report = unshadow_class_names(parse(src), toy_target(**target), taken)
    return module.code, report


def test_known_diffusers_names_are_in_the_set():
    names = diffusers_class_names()
    assert {"Attention", "FeedForward", "BasicTransformerBlock", "GEGLU", "PatchEmbed", "UNet2DModel"} <= names
    assert "DiTBlock" not in names and "Mlp" not in names


def test_toy_attention_renamed_with_its_uses():
    code, report = _run(TOY)
    assert "class ToyAttention(nn.Module):" in code and "self.attn = ToyAttention(hidden_size, num_heads)" in code
    assert report.data["class_renames"] == {"Attention": "ToyAttention"}
    model = load(code).ToyModel(**TOY_CONFIG)
    assert type(model.blocks[0].attn).__name__ == "ToyAttention"
    assert list(model.state_dict()) == list(load(TOY).ToyModel(**TOY_CONFIG).state_dict())  # weights keep their names


def test_only_classes_of_this_file_are_renamed():
    src = '''
    import torch.nn as nn
    from somewhere import FeedForward


    class Attention(nn.Module):
        pass


    class DiTBlock(nn.Module):
        MODES = {"softmax": Attention}

        def __init__(self):
            super().__init__()
            self.attn = Attention()
            self.mha = nn.Attention  # an attribute of another module
            self.ff = FeedForward()
            configure(Attention=1)


    class ToyModel(nn.Module):
        pass
    '''
    code, report = _run(src)
    assert "MODES = {\"softmax\": ToyAttention}" in code and "self.attn = ToyAttention()" in code
    assert "nn.Attention" in code and "configure(Attention=1)" in code
    assert "from somewhere import FeedForward" in code and "self.ff = FeedForward()" in code
    assert "class DiTBlock" in code


def test_not_renamed_when_the_prefixed_name_is_taken_or_it_is_the_model():
    src = "class Attention:\n    pass\n\n\nclass ToyAttention:\n    pass\n\n\nclass ToyModel:\n    pass\n"
    code, report = _run(src)
    assert "class Attention:" in code and any("taken" in s["reason"] for s in report.skipped)
    code, report = _run("class UNet2DModel:\n    pass\n", class_name="UNet2DModel")
    assert "class UNet2DModel:" in code and not report.changes
