"""Findings as text, JSON, SARIF 2.1.0 or GitHub workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence

from agent import __version__
from agent.checks.registry import RULES, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def as_text(findings: Sequence[Finding]) -> str:
    lines = [f"{f.path}:{f.line}:{f.col}: {f.rule} [{RULES[f.rule].name if f.rule in RULES else 'syntax'}] {f.message}" for f in findings]
    lines.append(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}")
    return "\n".join(lines)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)


def as_github(findings: Sequence[Finding]) -> str:
    def esc(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    return "\n".join(
        f"::warning file={f.path},line={f.line},col={f.col},title={f.rule}::{esc(f.message)}" for f in findings
    )


def as_sarif(findings: Sequence[Finding]) -> str:
    used = sorted({f.rule for f in findings} | set(RULES))
    rules = []
    for rule_id in used:
        r = RULES.get(rule_id)
        if r is None:
            rules.append({"id": rule_id, "name": "syntax-error", "shortDescription": {"text": "File does not parse"}})
            continue
        rules.append({
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": f"{r.what} {r.why}"},
            "help": {"text": f"{r.why}\n\nBad:\n{r.bad}\n\nGood:\n{r.good}", "markdown": f"{r.why}\n\nBad:\n```python\n{r.bad}\n```\nGood:\n```python\n{r.good}\n```"},
            "properties": {"tags": [r.scope], "skills_anchor": r.anchor},
            "defaultConfiguration": {"level": "warning"},
        })
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": "warning",
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": f.path.lstrip("./")},
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
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2)


FORMATS = {"text": as_text, "json": as_json, "sarif": as_sarif, "github": as_github}
