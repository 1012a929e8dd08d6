"""The config and forward vocabulary claims checked against the installed diffusers: every class
said to use a name takes it, no research alias is itself a diffusers name of another meaning in
those classes, and skills/models.md shows the same table."""

import inspect
from pathlib import Path

import diffusers
import pytest

from agent.porting.conventions.vocabulary import (
    CONFIG_NAMES,
    FORWARD_NAMES,
    HEADS,
    PER_HEAD,
    config_names_for,
)

ROOT = Path(__file__).resolve().parent.parent


def _init_args(cls_name: str) -> set[str]:
    return set(inspect.signature(getattr(diffusers, cls_name).__init__).parameters)


@pytest.mark.parametrize("entry", CONFIG_NAMES, ids=lambda e: e.name)
def test_every_config_name_is_taken_by_the_classes_cited(entry):
    assert entry.used_by, entry.name
    for cls in entry.used_by:
        assert entry.name in _init_args(cls), f"{cls}.__init__ has no {entry.name}"


@pytest.mark.parametrize("entry", CONFIG_NAMES, ids=lambda e: e.name)
def test_aliases_are_not_other_arguments_of_the_cited_classes(entry):
    for cls in entry.used_by:
        clash = set(entry.aliases) & _init_args(cls)
        assert not clash, f"{cls} takes {clash} as well as {entry.name}: they mean different things there"


@pytest.mark.parametrize("name", sorted(FORWARD_NAMES))
def test_every_forward_name_is_taken_by_the_classes_cited(name):
    for cls in FORWARD_NAMES[name].used_by:
        assert name in inspect.signature(getattr(diffusers, cls).forward).parameters, f"{cls}.forward has no {name}"


def test_per_head_split_matches_the_transformers_it_imitates():
    for cls in ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel"):
        args = _init_args(cls)
        assert {HEADS, PER_HEAD} <= args and "hidden_size" not in args


def test_one_alias_never_means_two_names_in_one_family():
    for family in ("transformers", "unets", "autoencoders"):
        seen: dict[str, str] = {}
        for entry in CONFIG_NAMES:
            if family in entry.families:
                for alias in entry.aliases:
                    assert seen.setdefault(alias, entry.name) == entry.name, (family, alias)
        assert config_names_for(family)


def test_skills_table_lists_every_name_and_its_sources():
    text = (ROOT / "skills" / "models.md").read_text()
    section = text[text.index('<a id="config-vocabulary">'):]
    for entry in CONFIG_NAMES:
        row = next((line for line in section.splitlines() if line.startswith(f"| `{entry.name}` |")), None)
        assert row is not None, f"skills/models.md has no row for {entry.name}"
        for alias in entry.aliases:
            assert f"`{alias}`" in row, (entry.name, alias)
        for cls in entry.used_by:
            assert cls in row, (entry.name, cls)
