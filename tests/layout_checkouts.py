"""A diffusers checkout in the folder layout of the model-folder refactor, made from the flat one
conftest builds from the installed wheel: DiT's transformer moves from
`models/transformers/dit_transformer_2d.py` into `models/transformers/dit/` (`__init__.py`
exporting the class, `model.py` holding it, its relative imports one level deeper), and the two
`__init__` files that name the module follow. Nothing else in diffusers imports that module."""

from __future__ import annotations

import shutil
from pathlib import Path

import git

from agent.layouts import deepen_relative_imports

FLAT_MODULE, FOLDER, CLASS = "dit_transformer_2d", "dit", "DiTTransformer2DModel"


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: expected one {old!r}"
    path.write_text(text.replace(old, new))


def make_folder_checkout(flat_template: Path, dest: Path) -> Path:
    """A copy of `flat_template` with DiT in folder form, committed on main."""
    shutil.copytree(flat_template, dest, symlinks=True)
    transformers = dest / "src" / "diffusers" / "models" / "transformers"
    flat = transformers / f"{FLAT_MODULE}.py"
    folder = transformers / FOLDER
    folder.mkdir()
    (folder / "model.py").write_text(deepen_relative_imports(flat.read_text()))
    (folder / "__init__.py").write_text(f"from .model import {CLASS}\n")
    flat.unlink()
    _replace_once(transformers / "__init__.py", f"from .{FLAT_MODULE} import {CLASS}", f"from .{FOLDER} import {CLASS}")
    _replace_once(transformers.parent / "__init__.py", f'"transformers.{FLAT_MODULE}"', f'"transformers.{FOLDER}"')
    repo = git.Repo(dest)
    repo.git.add(A=True)
    repo.index.commit("DiT in the model-folder layout")
    return dest
