"""Apply the planted bugs of plants.py and check them with the real engine (no mocks): each base
file is checked untouched and planted; a plant is caught when the planted file has a finding of
the plant's rule that the untouched file does not."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from planted.plants import PLANTS, Plant

BASE = Path(__file__).resolve().parent / "base"


class PlantError(Exception):
    """A plant's text is not (or not once) in its base: the corpus and the base disagree."""


def apply_edits(text: str, edits, where: str) -> str:
    for old, new, *times in edits:
        n, wanted = text.count(old), (times[0] if times else 1)
        if n != wanted:
            raise PlantError(f"{where}: edit text found {n} times, not {wanted}: {old[:60]!r}")
        text = text.replace(old, new)
    return text


@dataclass
class Outcome:
    plant: Plant
    caught: bool | None  # None: could not be applied (skipped)
    new: list[str]  # new findings of the plant's rule
    note: str = ""


def _findings(path: Path, rule: str) -> Counter:
    from agent.checks.engine import check_paths

    return Counter((f.rule, f.message) for f in check_paths([path], select=[rule], use_cache=False, jobs=1))


def run_plants(plants: list[Plant] | None = None) -> list[Outcome]:
    plants = PLANTS if plants is None else plants
    out: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        tmp = Path(tmp)
        installed = None
        base_cache: dict[tuple[str, str], Counter] = {}
        for plant in plants:
            if plant.base.startswith("installed:"):
                if installed is None:
                    installed = _installed_copy(tmp)
                out.append(_installed_plant(plant, installed, base_cache))
            else:
                out.append(_file_plant(plant, tmp, base_cache))
    return out


def _file_plant(plant: Plant, tmp: Path, base_cache) -> Outcome:
    source = (BASE / f"{plant.base}.txt").read_text()
    folder = tmp / plant.id
    folder.mkdir()
    original = folder / "original" / plant.base
    planted = folder / "planted" / plant.base
    original.parent.mkdir()
    planted.parent.mkdir()
    original.write_text(source)
    try:
        planted.write_text(apply_edits(source, plant.edits, plant.id))
    except PlantError as exc:
        return Outcome(plant, None, [], str(exc))
    key = (plant.base, plant.rule)
    if key not in base_cache:
        base_cache[key] = _findings(original, plant.rule)
    new = _findings(planted, plant.rule) - base_cache[key]
    return Outcome(plant, bool(new), [m for _r, m in new])


def _installed_copy(tmp: Path) -> Path:
    import diffusers

    root = tmp / "installed" / "src" / "diffusers"
    shutil.copytree(Path(diffusers.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _installed_plant(plant: Plant, root: Path, base_cache) -> Outcome:
    edited = root / plant.base.split(":", 1)[1]
    target = root / (plant.target or plant.base).split(":", 1)[1]
    if not edited.is_file() or not target.is_file():
        return Outcome(plant, None, [], "the installed diffusers has no such file")
    key = (str(target), plant.rule)
    if key not in base_cache:
        base_cache[key] = _findings(target, plant.rule)
    before = edited.read_text()
    try:
        edited.write_text(apply_edits(before, plant.edits, plant.id))
    except PlantError as exc:
        return Outcome(plant, None, [], f"{exc} (installed diffusers differs from 0.42.1)")
    try:
        new = _findings(target, plant.rule) - base_cache[key]
    finally:
        edited.write_text(before)
    return Outcome(plant, bool(new), [m for _r, m in new])
