"""The skills: the conventions the LLM is told and the checks enforce, stated once.

`load_skills(target)` returns ours (skills/ in the package), except that a diffusers checkout
with its own agent docs folder (`.ai/`) wins for every document it has; ours fill only what it
lacks. Anchors (`<a id="...">`) let rules and prompts point at one rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.resources import skills_dir

ANCHOR = re.compile(r'<a id="([\w-]+)"></a>\s*\n\s*#+\s*(.+)')
TITLE = re.compile(r"^#\s+(.+)$", re.M)


@dataclass
class Skill:
    name: str  # file name, e.g. models.md
    text: str
    source: str  # "integrate" or the folder it came from
    anchors: dict[str, str] = field(default_factory=dict)  # anchor id -> heading

    @property
    def title(self) -> str:
        m = TITLE.search(self.text)
        return m.group(1).strip() if m else self.name


def _skill(path: Path, source: str) -> Skill:
    text = path.read_text()
    return Skill(path.name, text, source, {a: h.strip() for a, h in ANCHOR.findall(text)})


def load_skills(target: str | Path | None = None) -> dict[str, Skill]:
    skills = {p.name: _skill(p, "integrate") for p in sorted(skills_dir().glob("*.md"))}
    if target:
        ai = Path(target) / ".ai"
        if ai.is_dir():
            for p in sorted(ai.glob("*.md")):
                skills[p.name] = _skill(p, str(ai))
    return skills


def skills_index(skills: dict[str, Skill]) -> str:
    """A short index for a system prompt: titles and anchors; full text comes on request."""
    lines = []
    for s in skills.values():
        lines.append(f"- {s.name} ({s.source}): {s.title}")
        lines += [f"    - #{a}: {h}" for a, h in s.anchors.items()]
    return "\n".join(lines)
