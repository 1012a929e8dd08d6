"""Add a model's page to diffusers' docs table of contents (`docs/source/en/_toctree.yml`).

The entry goes under API > Models, in the family's subsection (Transformers, UNets, ...) when the
checkout has one, at the place `utils/check_doc_toc.py` sorts it to: by title, case-insensitive,
with "Overview"-style entries kept first. The file is edited as text (two lines inserted with the
neighbours' indentation) so nothing else in it moves, then read back to prove that the only change
is the new entry.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

TOC = Path("docs/source/en/_toctree.yml")
FAMILY_SECTIONS = {"transformers": "Transformers", "unets": "UNets", "autoencoders": "VAEs", "controlnets": "ControlNets"}
# titles diffusers' toc check leaves in place instead of sorting them
FIXED_TITLES = {"overview", "autopipeline"}


class TocError(Exception):
    """The table of contents is missing or not laid out as diffusers lays it out."""


def _value(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def _child_with_title(seq: yaml.Node | None, title: str) -> yaml.MappingNode | None:
    if not isinstance(seq, yaml.SequenceNode):
        return None
    for item in seq.value:
        t = _value(item, "title") if isinstance(item, yaml.MappingNode) else None
        if isinstance(t, yaml.ScalarNode) and t.value == title:
            return item
    return None


def _models_sections(root: yaml.Node, family: str) -> tuple[yaml.SequenceNode, list[str]]:
    """The sequence node the entry belongs to, and the path of titles leading to it."""
    api = _child_with_title(root, "API")
    models = _child_with_title(_value(api, "sections"), "Models") if api is not None else None
    if models is None:
        raise TocError("no API > Models section")
    sections = _value(models, "sections")
    path = ["API", "Models"]
    sub_title = FAMILY_SECTIONS.get(family)
    sub = _child_with_title(sections, sub_title) if sub_title else None
    if sub is not None:
        sections, path = _value(sub, "sections"), [*path, sub_title]
    if not isinstance(sections, yaml.SequenceNode) or not sections.value:
        raise TocError(f"{' > '.join(path)} has no entries")
    return sections, path


def _entries_at(content: Any, path: list[str]) -> list[dict]:
    node = content
    for title in path:
        node = next(item for item in node if item.get("title") == title)["sections"]
    return node


def add_model_page(checkout: Path, local: str, title: str, family: str) -> bool:
    """Insert `- local: <local> / title: <title>`; False when an entry for `local` is already there."""
    path = checkout / TOC
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text)
        before = yaml.safe_load(text)
    except OSError as exc:
        raise TocError(f"cannot read {TOC}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TocError(f"{TOC} is not valid YAML: {exc}") from None
    sections, titles = _models_sections(root, family)
    entries = [e for e in sections.value if isinstance(e, yaml.MappingNode)]
    locals_ = [getattr(_value(e, "local"), "value", None) for e in entries]
    if local in locals_:
        return False

    def sort_key(entry: yaml.MappingNode) -> str | None:
        t = _value(entry, "title")
        return t.value.lower() if isinstance(t, yaml.ScalarNode) and t.value.lower() not in FIXED_TITLES else None

    after = next((e for e in entries if sort_key(e) is not None and sort_key(e) > title.lower()), None)
    lines = text.splitlines(keepends=True)
    anchor = after or entries[-1]
    indent = " " * anchor.start_mark.column  # column of the entry's first key, after "- "
    new = [f"{indent[:-2]}- local: {local}\n", f"{indent}title: {title}\n"]
    # before the entry that sorts after ours, or after the last line of the last entry
    at = after.start_mark.line if after is not None else max(v.end_mark.line for _, v in anchor.value) + 1
    updated = "".join([*lines[:at], *new, *lines[at:]])

    expected = copy.deepcopy(before)
    target = _entries_at(expected, titles)
    target.insert(sections.value.index(after) if after is not None else len(target), {"local": local, "title": title})
    if yaml.safe_load(updated) != expected:
        raise TocError(f"could not insert the entry into {TOC} without changing anything else")
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(updated)
    return True
