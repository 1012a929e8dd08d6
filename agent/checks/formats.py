"""Findings as text, JSON, SARIF 2.1.0 or GitHub workflow annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.checks.registry import RULES, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def as_text(findings: Sequence[Finding]) -> str:
    lines = [f"{f.path}:{f.line}:{f.col}: {f.rule} [{RULES[f.rule].name if f.rule in RULES else 'syntax-error' if f.rule == 'E999' else 'internal'}] {f.message}" for f in findings]
    lines.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return "\n".join(lines)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)


def as_github(findings: Sequence[Finding]) -> str:
    def esc(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def level(f: Finding) -> str:
        return "error" if f.rule in ("E999", "E998") or (f.rule in RULES and RULES[f.rule].blocks_pass) else "warning"

    return "\n".join(
        f"::{level(f)} file={f.path},line={f.line},col={f.col},title={f.rule}::{esc(f.message)}" for f in findings
    )


def repository_root(start: Path | None = None) -> Path:
    """The work tree that holds `start` (the current directory): the nearest folder with a `.git`
    (a directory, or a file for worktrees and submodules); `start` itself outside any repository."""
    here = Path(os.path.abspath(start or Path.cwd()))
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def artifact_location(path: str, root: Path) -> dict:
    """SARIF location of a finding's file: relative to the repository root (what code scanning
    matches against the checkout), or an absolute file URI for a file outside it."""
    absolute = Path(os.path.abspath(path))  # normalises "./" and "../" without following links
    try:
        return {"uri": absolute.relative_to(root).as_posix(), "uriBaseId": "SRCROOT"}
    except ValueError:
        return {"uri": absolute.as_uri()}


def as_sarif(findings: Sequence[Finding], root: Path | None = None) -> str:
    root = Path(os.path.abspath(root)) if root is not None else repository_root()
    used = sorted({f.rule for f in findings} | set(RULES))
    rules = []
    for rule_id in used:
        r = RULES.get(rule_id)
        if r is None:
            names = {"E999": ("syntax-error", "File does not parse"), "E998": ("rule-crashed", "A rule failed on this file")}
            name, text = names.get(rule_id, ("internal", rule_id))
            rules.append({"id": rule_id, "name": name, "shortDescription": {"text": text}, "defaultConfiguration": {"level": "error"}})
            continue
        rules.append({
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": f"{r.what} {r.why}"},
            "help": {"text": f"{r.why}\n\nBad:\n{r.bad}\n\nGood:\n{r.good}", "markdown": f"{r.why}\n\nBad:\n```python\n{r.bad}\n```\nGood:\n```python\n{r.good}\n```"},
            "properties": {"tags": [r.scope], "skills_anchor": r.anchor, "blocks_pass": r.blocks_pass},
            "defaultConfiguration": {"level": "error" if r.blocks_pass else "warning"},
        })
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": "error" if f.rule in ("E999", "E998") or (f.rule in RULES and RULES[f.rule].blocks_pass) else "warning",
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": artifact_location(f.path, root),
                    "region": {"startLine": f.line, "startColumn": f.col},
                }
            }],
        }
        for f in findings
    ]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "integrate", "version": __version__, "informationUri": "https://github.com/huggingface/diffusers", "rules": rules}},
            "originalUriBaseIds": {"SRCROOT": {"uri": root.as_uri() + "/"}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2)


FORMATS = {"text": as_text, "json": as_json, "sarif": as_sarif, "github": as_github}
