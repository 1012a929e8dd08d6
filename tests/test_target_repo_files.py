"""--target: the files diffusers' CI asks of a new model besides the model and its exports:
dummy objects, the docs page and its toc entry."""

import shutil
from pathlib import Path

import diffusers
import pytest
import yaml

from agent.diffusers_repo import docs_page, dummies, toctree
from agent.registration import register_model

WHEEL = Path(diffusers.__file__).parent


def test_regeneration_reproduces_every_dummy_file_the_wheel_ships():
    """The wheel's dummy files are what diffusers' own generator wrote from this `__init__`:
    regenerating them must give the same bytes, file for file."""
    expected = dummies.expected_dummy_files(WHEEL.parent)
    assert "dummy_pt_objects.py" in expected and len(expected) >= 10
    for name, text in expected.items():
        assert (WHEEL / "utils" / name).read_text(encoding="utf-8") == text, name
    assert dummies.stale_dummy_files(WHEEL.parent) == {}


def _copy_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(WHEEL, src / "diffusers", ignore=shutil.ignore_patterns("__pycache__"))
    return src


def test_a_registered_class_gets_its_dummy_and_nothing_else_changes(tmp_path):
    src = _copy_src(tmp_path)
    before = {p.name: p.read_text() for p in (src / "diffusers" / "utils").glob("dummy_*_objects.py")}
    register_model(src, "transformer_tiny_dit", "TinyDiTTransformer2DModel", "transformers")
    assert list(dummies.stale_dummy_files(src)) == ["dummy_pt_objects.py"]
    written = dummies.regenerate_dummies(src)
    assert [p.name for p in written] == ["dummy_pt_objects.py"]
    after = {p.name: p.read_text() for p in (src / "diffusers" / "utils").glob("dummy_*_objects.py")}
    assert {n for n in after if after[n] != before[n]} == {"dummy_pt_objects.py"}
    pt = after["dummy_pt_objects.py"]
    block = pt[pt.index("class TinyDiTTransformer2DModel("):]
    assert block.split("\n\n\n")[0].count("requires_backends(") == 3 and '_backends = ["torch"]' in block
    # placed where the name sorts among its neighbours in the __init__
    classes = [line.split("(")[0][6:] for line in pt.splitlines() if line.startswith("class ")]
    index = classes.index("TinyDiTTransformer2DModel")
    assert classes[index - 1].lower() < "tinydittransformer2dmodel" < classes[index + 1].lower()
    assert dummies.regenerate_dummies(src) == []  # idempotent


def test_dummy_kinds_follow_the_name_case():
    source = (
        "if TYPE_CHECKING:\n"
        "    try:\n"
        "        if not (is_torch_available() and is_scipy_available()):\n"
        "            raise OptionalDependencyNotAvailable()\n"
        "    except OptionalDependencyNotAvailable:\n"
        "        from .utils.dummy_torch_and_scipy_objects import *\n"
        "    else:\n"
        "        from .a import SOME_CONSTANT, some_function, SomeClass\n"
    )
    (objects,) = dummies.backend_objects(source)
    assert objects.file_name == "dummy_torch_and_scipy_objects.py"
    text = dummies.dummy_file(objects)
    assert "\nSOME_CONSTANT = None\n" in text
    assert 'def some_function(*args, **kwargs):\n    requires_backends(some_function, ["torch", "scipy"])' in text
    assert "class SomeClass(metaclass=DummyObject):" in text


def test_an_init_without_type_checking_is_refused(tmp_path):
    with pytest.raises(dummies.DummiesError, match="TYPE_CHECKING"):
        dummies.backend_objects("x = 1\n")


def _toc(tmp_path: Path, content: list) -> Path:
    path = tmp_path / toctree.TOC
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(content, allow_unicode=True))
    return path


TOC = [
    {"sections": [{"local": "index", "title": "Diffusers"}], "title": "Get started"},
    {"sections": [
        {"sections": [{"local": "api/configuration", "title": "Configuration"}], "title": "Main Classes"},
        {"sections": [
            {"local": "api/models/overview", "title": "Overview"},
            {"sections": [{"local": "api/models/dit_transformer2d", "title": "DiTTransformer2DModel"},
                          {"local": "api/models/sd3_transformer2d", "title": "SD3Transformer2DModel"}],
             "title": "Transformers"},
            {"sections": [{"local": "api/models/unet2d", "title": "UNet2DModel"}], "title": "UNets"},
        ], "title": "Models"},
    ], "title": "API", "isExpanded": False},
]


def test_toc_entry_is_inserted_sorted_in_its_family_and_nothing_else_moves(tmp_path):
    path = _toc(tmp_path, TOC)
    before = path.read_text()
    assert toctree.add_model_page(tmp_path, "api/models/transformer_tiny_dit", "TinyDiTTransformer2DModel", "transformers")
    after = path.read_text()
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == ["      - local: api/models/transformer_tiny_dit", "        title: TinyDiTTransformer2DModel"]
    transformers = yaml.safe_load(after)[1]["sections"][1]["sections"][1]["sections"]
    assert [e["title"] for e in transformers] == ["DiTTransformer2DModel", "SD3Transformer2DModel", "TinyDiTTransformer2DModel"]
    # the same sort diffusers' check_doc_toc applies: by lower-cased title
    assert transformers == sorted(transformers, key=lambda e: e["title"].lower())
    assert not toctree.add_model_page(tmp_path, "api/models/transformer_tiny_dit", "TinyDiTTransformer2DModel", "transformers")
    assert path.read_text() == after


def test_toc_entry_before_the_first_larger_title_and_in_the_unets_section(tmp_path):
    path = _toc(tmp_path, TOC)
    toctree.add_model_page(tmp_path, "api/models/unet_a", "AUNetModel", "unets")
    toctree.add_model_page(tmp_path, "api/models/transformer_a", "ATransformer2DModel", "transformers")
    models = yaml.safe_load(path.read_text())[1]["sections"][1]["sections"]
    assert models[0]["title"] == "Overview"
    assert [e["title"] for e in models[1]["sections"]][0] == "ATransformer2DModel"
    assert [e["title"] for e in models[2]["sections"]] == ["AUNetModel", "UNet2DModel"]


def test_toc_without_models_section_is_an_error(tmp_path):
    _toc(tmp_path, TOC[:1])
    with pytest.raises(toctree.TocError, match="API > Models"):
        toctree.add_model_page(tmp_path, "api/models/x", "XModel", "transformers")


CARD = """---
license: apache-2.0
---

# MyDiT

![banner](banner.png)

MyDiT is a class-conditional diffusion transformer trained on ImageNet, described in
[the paper](https://arxiv.org/abs/2212.09748v2).

## Usage

```python
model = load()
```
"""


def test_docs_page_reads_title_summary_and_paper_from_the_card():
    card = docs_page.read_card(CARD)
    assert card.title == "MyDiT"
    assert card.paper == "https://huggingface.co/papers/2212.09748"
    assert card.summary.startswith("MyDiT is a class-conditional diffusion transformer trained on ImageNet")
    page = docs_page.render_page(
        class_name="MyDiTTransformer2DModel", family="transformers", module_name="transformer_my_dit", card=card,
        source_name="org/my-dit", source_url="https://huggingface.co/org/my-dit",
        model_source="from diffusers.utils import BaseOutput\nclass MyDiTOutput(BaseOutput):\n    pass\n",
    )
    assert page.startswith("<!--Copyright ")
    assert "# MyDiTTransformer2DModel\n\nA Transformer model for image-like data from [MyDiT](https://huggingface.co/papers/2212.09748)." in page
    assert "\n## MyDiTTransformer2DModel\n\n[[autodoc]] MyDiTTransformer2DModel\n" in page
    assert "[[autodoc]] models.transformers.transformer_my_dit.MyDiTOutput" in page
    assert max(len(line) for line in page.splitlines() if not line.startswith(("http", "Licensed", "the License"))) <= 119
    assert "model = load()" not in page


def test_docs_page_without_card_or_paper_names_the_source():
    page = docs_page.render_page(
        class_name="XUNet2DModel", family="unets", module_name="unet_x", card=docs_page.CardFacts(None, None, None),
        source_name="x-model", source_url=None,
    )
    assert "A UNet model from x-model." in page and "[[autodoc]] XUNet2DModel" in page
