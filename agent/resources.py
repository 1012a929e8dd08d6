"""Find the skills and templates whether installed from a wheel or run from a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"integrate is missing its {name}/ folder; reinstall the package")


def skills_dir() -> Path:
    return _data_dir("skills")


def templates_dir() -> Path:
    return _data_dir("templates")
