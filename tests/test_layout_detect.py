"""Which layout a run uses: detected from the --target checkout (flat or model folders in the
model's family), forced with --layout, flat for a standalone port; and where its files go."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE, integrate

from agent.checks import blocking, check_port
from agent.layouts import (
    AUTO,
    FLAT,
    FOLDER,
    choose_layout,
    deepen_relative_imports,
    has_metadata_api,
    model_code_files,
    model_files,
    model_folders,
    model_module,
)
from agent.run_state import Run
from agent.stages.analyze import analyze
from agent.stages.plan import plan
from agent.stages.resolve import resolve

TRANSFORMERS = Path("src/diffusers/models/transformers")


def test_the_wheel_checkout_is_flat(diffusers_checkout_template):
    assert model_folders(diffusers_checkout_template, "transformers") == []
    choice = choose_layout(AUTO, "transformers", diffusers_checkout_template)
    assert choice.layout == FLAT
    assert "models/transformers/ of the checkout holds no model folder" in choice.reason


def test_a_checkout_with_a_model_folder_is_folder(folder_checkout_template):
    assert model_folders(folder_checkout_template, "transformers") == ["dit"]
    choice = choose_layout(AUTO, "transformers", folder_checkout_template)
    assert choice.layout == FOLDER and choice.folders == ("dit",)
    assert "already holds models in folder form (dit)" in choice.reason
    # the rule looks at the model's own family: the UNets there are still flat files
    assert choose_layout(AUTO, "unets", folder_checkout_template).layout == FLAT


def test_the_folder_fixture_is_a_working_diffusers(folder_checkout_template):
    """The fixture is a real diffusers in the refactor's form: the moved class imports from the
    top level, from its folder."""
    script = "from diffusers import DiTTransformer2DModel as M\nprint(M.__module__)\n"
    env = {**os.environ, "PYTHONPATH": str(folder_checkout_template / "src")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=folder_checkout_template)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "diffusers.models.transformers.dit.model"


def test_only_packages_with_a_model_module_count(diffusers_checkout_template, tmp_path):
    checkout = tmp_path / "c"
    (checkout / TRANSFORMERS / "helpers").mkdir(parents=True)  # a package, but no model.py
    (checkout / TRANSFORMERS / "helpers" / "__init__.py").write_text("")
    (checkout / TRANSFORMERS / "notes").mkdir()  # model.py but not a package
    (checkout / TRANSFORMERS / "notes" / "model.py").write_text("")
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "__init__.py").write_text("")
    (real / "model.py").write_text("")
    (checkout / TRANSFORMERS / "linked").symlink_to(real)  # a link into somewhere else
    assert model_folders(checkout, "transformers") == []
    assert choose_layout(AUTO, "transformers", checkout).layout == FLAT
    assert model_folders(checkout, "autoencoders") == []  # no such family folder at all


def test_layout_flag_forces_either_way(diffusers_checkout_template, folder_checkout_template):
    assert choose_layout(FLAT, "transformers", folder_checkout_template) == choose_layout(FLAT, "transformers", None)
    assert choose_layout(FLAT, "transformers", folder_checkout_template).reason == "--layout flat"
    assert choose_layout(FOLDER, "transformers", diffusers_checkout_template).layout == FOLDER
    assert choose_layout(AUTO, "transformers", None).layout == FLAT  # standalone: flat unless asked
    assert choose_layout(FOLDER, "transformers", None).layout == FOLDER
    with pytest.raises(ValueError, match="unknown layout"):
        choose_layout("tree", "transformers", None)


def test_where_the_files_go(diffusers_checkout_template, tmp_path):
    flat = model_files(FLAT, "transformers", "transformer_tiny_dit", diffusers_checkout_template)
    assert (flat.module_name, flat.model_path, flat.package_files) == (
        "transformer_tiny_dit", "src/diffusers/models/transformers/transformer_tiny_dit.py", ())
    folder = model_files(FOLDER, "transformers", "transformer_tiny_dit", diffusers_checkout_template)
    assert folder.module_name == "tiny_dit"  # named as the refactor names them: models/transformers/flux/
    assert folder.model_path == "src/diffusers/models/transformers/tiny_dit/model.py"
    assert folder.package_files == ("src/diffusers/models/transformers/tiny_dit/__init__.py",
                                    "src/diffusers/models/transformers/tiny_dit/_metadata.py")
    # standalone: the folder keeps the prefixed name, which cannot shadow the reference's `tiny_dit` module
    alone = model_files(FOLDER, "transformers", "transformer_tiny_dit", None)
    assert (alone.module_name, alone.model_path) == ("transformer_tiny_dit", "transformer_tiny_dit/model.py")
    # a short name the family folder already uses (a module or a folder) is not taken
    assert model_files(FOLDER, "transformers", "transformer_dit_transformer_2d", diffusers_checkout_template).module_name == "transformer_dit_transformer_2d"
    # UNets keep their module name
    assert model_files(FOLDER, "unets", "unet_karras_3d", diffusers_checkout_template).module_name == "unet_karras_3d"


def test_a_checkout_whose_model_mixin_has_metadata_gets_no_second_record(folder_checkout_template, tmp_path):
    checkout = tmp_path / "refactored"
    shutil.copytree(folder_checkout_template / "src" / "diffusers" / "models", checkout / "src" / "diffusers" / "models", symlinks=True)
    assert not has_metadata_api(checkout)
    modeling = checkout / "src/diffusers/models/modeling_utils.py"
    text = modeling.read_text()
    anchor = "    _supports_gradient_checkpointing = False\n"
    assert anchor in text
    modeling.write_text(text.replace(anchor, anchor + "\n    @classmethod\n    def metadata(cls):\n        return None\n\n", 1))
    assert has_metadata_api(checkout)
    placed = model_files(FOLDER, "transformers", "transformer_tiny_dit", checkout)
    assert placed.package_files == ("src/diffusers/models/transformers/tiny_dit/__init__.py",)
    assert placed.metadata_record == "ModelMixin.metadata() of the checkout"


def test_relative_imports_move_one_folder_deeper():
    flat = (
        "import torch\n"
        "from diffusers.utils import logging\n"
        "from . import attention_processor\n"
        "from ..attention import FeedForward\n"
        "from ...configuration_utils import ConfigMixin, register_to_config\n"
    )
    assert deepen_relative_imports(flat) == (
        "import torch\n"
        "from diffusers.utils import logging\n"
        "from .. import attention_processor\n"
        "from ...attention import FeedForward\n"
        "from ....configuration_utils import ConfigMixin, register_to_config\n"
    )


def test_the_rules_read_every_file_of_a_model_folder(tmp_path):
    """Importing the model runs its folder's `__init__.py` and whatever that imports, so a tamper
    planted beside model.py is found as it would be in model.py; a flat file is read alone."""
    (tmp_path / "transformer_x.py").write_text("import torch\n")
    (tmp_path / "helper.py").write_text("import os\n\nSEEN = os.environ.get('X')\n")
    assert model_code_files(tmp_path, "transformer_x.py") == [tmp_path / "transformer_x.py"]
    folder = tmp_path / "x"
    (folder / "sub").mkdir(parents=True)
    for name in ("__init__.py", "model.py", "_metadata.py", "sub/__init__.py"):
        (folder / name).write_text("import torch\n")
    (folder / "notes.txt").write_text("not code\n")
    found = model_code_files(tmp_path, "x/model.py")
    assert found[0] == folder / "model.py"
    assert sorted(p.relative_to(folder).as_posix() for p in found[1:]) == ["__init__.py", "_metadata.py", "sub/__init__.py"]
    assert blocking(check_port(found)) == []
    (folder / "_metadata.py").write_text("import os\n\nSEEN = os.environ.get('X')\n")
    planted = blocking(check_port(model_code_files(tmp_path, "x/model.py")))
    assert [Path(f.path).name for f in planted] == ["_metadata.py"]
    # a model.py that is no package's (no __init__.py beside it) is read alone
    (folder / "__init__.py").unlink()
    assert model_code_files(tmp_path, "x/model.py") == [folder / "model.py"]


def test_model_module_per_layout():
    tree = {"layout": "diffusers-tree", "family": "transformers"}
    assert model_module({**tree, "module_name": "transformer_x"}) == "diffusers.models.transformers.transformer_x"
    assert model_module({**tree, "module_name": "x", "model_layout": FOLDER}) == "diffusers.models.transformers.x.model"
    assert model_module({"layout": "standalone", "module_name": "transformer_x", "model_layout": FOLDER}) == "transformer_x.model"


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory) -> Run:
    """The bundled example resolved and analyzed once (the analysis does not depend on the layout)."""
    run = Run.create(tmp_path_factory.mktemp("layout-runs"), {"source": str(EXAMPLE)})
    for name, stage in (("resolve", resolve), ("analyze", analyze)):
        run.start_stage(name)
        run.finish_stage(name, stage(run), 0.0)
    return run


@pytest.mark.parametrize("requested, checkout, expected", [
    (AUTO, "flat", FLAT), (AUTO, "folder", FOLDER), (FLAT, "folder", FLAT), (FOLDER, "flat", FOLDER),
    (AUTO, None, FLAT), (FOLDER, None, FOLDER),
])
def test_plan_records_the_layout(analyzed, diffusers_checkout_template, folder_checkout_template, requested, checkout, expected):
    target = {"flat": diffusers_checkout_template, "folder": folder_checkout_template, None: None}[checkout]
    analyzed.data["inputs"].update(layout=requested, target=str(target) if target else None, out=None if target else "out")
    planned = plan(analyzed)
    assert planned["model_layout"] == expected
    assert planned["layout"] == ("diffusers-tree" if target else "standalone")
    assert planned["layout_reason"]
    base = "src/diffusers/models/transformers/" if target else ""
    if expected == FLAT:
        assert planned["model_path"] == f"{base}transformer_tiny_dit.py" and planned["package_files"] == []
    else:
        name = "tiny_dit" if target else "transformer_tiny_dit"
        assert planned["model_path"] == f"{base}{name}/model.py"
        assert planned["package_files"] == [f"{base}{name}/__init__.py", f"{base}{name}/_metadata.py"]
        assert set(planned["package_files"]) < set(planned["files"])
    # test and docs names do not depend on the layout; the plan says which layout and why
    assert planned["test_path"].endswith("transformer_tiny_dit.py")
    text = analyzed.path("plan.md").read_text()
    assert f"{expected} layout ({planned['layout_reason']})" in text


def test_unknown_layout_is_a_usage_error(tmp_path):
    proc = integrate(str(EXAMPLE), "--out", str(tmp_path / "out"), "--layout", "tree", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "Invalid value for '--layout'" in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()
