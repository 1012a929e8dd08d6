"""Where a port's files go: the flat file or the folder layout, and which one a checkout uses.

Two layouts exist for a diffusers model (docs/layout.md):

- flat: one module, `models/<family>/<module>.py` (`transformer_<name>.py`), diffusers' form
  until the model-folder refactor;
- folder: the refactor's form, a package per model, `models/<family>/<name>/` holding
  `__init__.py` (exports), `model.py` (the model), `_weight_mapping.py` (the conversion from the
  reference checkpoint, so it lives with the model) and `_metadata.py` (the capability record,
  unless the checkout's `ModelMixin` has its own `metadata()`).

In a diffusers checkout the layout follows the checkout: folder when the model's family folder
already holds a model in folder form (a package with `__init__.py` and `model.py`), flat
otherwise. A standalone port (`--out`) is flat unless asked. `--layout flat|folder` forces either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst

FLAT, FOLDER, AUTO = "flat", "folder", "auto"
CHOICES = (AUTO, FLAT, FOLDER)
MODEL_MODULE = "model"  # the model's module inside its folder
INIT, MODEL, MAPPING, METADATA = "__init__.py", "model.py", "_weight_mapping.py", "_metadata.py"
MODELS = Path("src/diffusers/models")


@dataclass(frozen=True)
class LayoutChoice:
    layout: str  # FLAT or FOLDER
    reason: str  # one sentence: why, with what was found
    folders: tuple[str, ...] = ()  # model folders found in the family (names)


@dataclass(frozen=True)
class ModelFiles:
    """The paths of one port's model, relative to its workspace (checkout root or --out folder)."""

    layout: str
    module_name: str  # what `models/<family>/__init__.py` (or a standalone user) imports: module or package
    model_path: str  # the file the port and every later stage edit
    package_dir: str | None = None  # the folder (folder layout)
    package_files: tuple[str, ...] = field(default=())  # scaffold's files in the folder besides model.py
    metadata_record: str | None = None  # where the capability record lives (folder layout)


def model_folders(checkout: Path, family: str) -> list[str]:
    """The packages in the refactor's form under `src/diffusers/models/<family>/` of a checkout:
    a folder (not a link) holding `__init__.py` and `model.py`."""
    base = checkout / MODELS / family
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir()
        if p.is_dir() and not p.is_symlink() and (p / INIT).is_file() and (p / MODEL).is_file()
    )


def choose_layout(requested: str, family: str, checkout: Path | None) -> LayoutChoice:
    """The layout a run uses: `requested` when it is flat or folder; otherwise (auto) what the
    checkout's family folder already uses, and flat for a standalone port."""
    if requested not in CHOICES:
        raise ValueError(f"unknown layout {requested!r}: choose one of {', '.join(CHOICES)}")
    if requested != AUTO:
        return LayoutChoice(requested, f"--layout {requested}")
    if checkout is None:
        return LayoutChoice(FLAT, "standalone port: the flat file unless --layout folder")
    folders = model_folders(checkout, family)
    if folders:
        shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
        return LayoutChoice(FOLDER, f"models/{family}/ of the checkout already holds models in folder form ({shown})", tuple(folders))
    return LayoutChoice(FLAT, f"models/{family}/ of the checkout holds no model folder (a package with {INIT} and {MODEL})")


def has_metadata_api(checkout: Path | None) -> bool:
    """Whether the checkout's `ModelMixin` already gives every model a `metadata()` (the refactor's
    capability record); then the folder gets no record of its own."""
    if checkout is None:
        return False
    source = checkout / MODELS / "modeling_utils.py"
    try:
        tree = cst.parse_module(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return False
    for node in tree.body:
        if isinstance(node, cst.ClassDef) and node.name.value == "ModelMixin":
            return any(isinstance(item, cst.FunctionDef) and item.name.value == "metadata" for item in node.body.body)
    return False


def folder_package(module_name: str, family: str, checkout: Path | None) -> str:
    """The folder's name. In a checkout a transformer's folder drops the `transformer_` prefix
    (`models/transformers/flux/`, as the refactor names them) unless that name is taken there; a
    standalone folder keeps the prefixed name, which cannot shadow the reference's own modules."""
    if checkout is None or family != "transformers":
        return module_name
    short = module_name.removeprefix("transformer_")
    base = checkout / MODELS / family
    if not short.isidentifier() or short in (module_name, MODEL_MODULE) or (base / short).exists() or (base / f"{short}.py").exists():
        return module_name
    return short


def model_files(layout: str, family: str, module_name: str, checkout: Path | None) -> ModelFiles:
    """Where the model goes for `layout`; `module_name` is the flat module's name."""
    root = f"{MODELS.as_posix()}/{family}/" if checkout is not None else ""
    if layout == FLAT:
        return ModelFiles(FLAT, module_name, f"{root}{module_name}.py")
    package = folder_package(module_name, family, checkout)
    folder = f"{root}{package}"
    own_record = not has_metadata_api(checkout)
    files = (f"{folder}/{INIT}",) + ((f"{folder}/{METADATA}",) if own_record else ())
    record = f"{folder}/{METADATA}" if own_record else "ModelMixin.metadata() of the checkout"
    return ModelFiles(FOLDER, package, f"{folder}/{MODEL}", folder, files, record)


# -- facts about a planned run ------------------------------------------------------------------

def layout_of(planned: dict[str, Any]) -> str:
    """The planned layout (runs planned before the folder layout existed are flat)."""
    return planned.get("model_layout", FLAT)


def model_module(planned: dict[str, Any]) -> str:
    """Dotted name of the model file's module from its import root (`src` of a checkout, or the
    --out folder)."""
    module = planned["module_name"] + (f".{MODEL_MODULE}" if layout_of(planned) == FOLDER else "")
    if planned["layout"] == "diffusers-tree":
        return f"diffusers.models.{planned.get('family', 'transformers')}.{module}"
    return module


def mapping_file(planned: dict[str, Any], workspace: Path, evidence: Path) -> Path:
    """Where the run's `_weight_mapping.py` goes: inside the model's folder in the folder layout
    (conversion lives with the model), with the evidence otherwise."""
    if layout_of(planned) == FOLDER:
        return workspace / planned["package_dir"] / MAPPING
    return evidence / MAPPING


def model_code_files(root: Path, model_file: str | Path) -> list[Path]:
    """The port's files the tamper and convention rules read: the model file and, when it is a
    model folder's `model.py`, every Python file of that folder, since importing the model runs
    the folder's `__init__.py` (and so the record, which imports the mapping when asked)."""
    path = root / model_file
    if path.name != MODEL or not (path.parent / INIT).is_file():
        return [path]
    return [path, *sorted(p for p in path.parent.rglob("*.py") if p != path)]


# -- moving a flat file's code into a folder ----------------------------------------------------

class _Deepen(cst.CSTTransformer):
    def __init__(self, levels: int) -> None:
        self.levels = levels

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        if not updated.relative:
            return updated
        return updated.with_changes(relative=[*updated.relative, *(cst.Dot() for _ in range(self.levels))])


def deepen_relative_imports(source: str, levels: int = 1) -> str:
    """`source`, written for a module at `models/<family>/<module>.py`, with every relative import
    reaching as far when the module moves `levels` folders deeper (`from ..attention import X`
    becomes `from ...attention import X`). Absolute imports are left as they are."""
    return cst.parse_module(source).visit(_Deepen(levels)).code
