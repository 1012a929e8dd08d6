"""Generate docs/rules.md from the rule registry: python -m agent.checks.docs > docs/rules.md"""

from __future__ import annotations

from agent.checks.registry import RULES, resolve_ids


def rules_markdown() -> str:
    resolve_ids([])  # registers every rule
    out = [
        "# Convention rules",
        "",
        "Generated from the rule registry (`python -m agent.checks.docs > docs/rules.md`); each rule",
        "is one file under `agent/checks/rules/` and points at the skills section that states it.",
        "Suppress a line with `# integrate: ignore[ID]`, a file with `# integrate: ignore-file[ID]`.",
        "",
        "| id | name | scope | summary |",
        "|---|---|---|---|",
    ]
    rules = sorted(RULES.values(), key=lambda r: r.id)
    out += [f"| {r.id} | `{r.name}` | {r.scope} | {r.summary} |" for r in rules]
    for r in rules:
        out += [
            "",
            f"## {r.id} {r.name}",
            "",
            f"**What:** {r.what}",
            "",
            f"**Why:** {r.why}",
            "",
            "Bad:",
            "```python",
            r.bad,
            "```",
            "Good:",
            "```python",
            r.good,
            "```",
            f"Skills: [`skills/{r.anchor}`](../skills/{r.anchor})" + ("  ·  `--fix` available" if r.fixable else ""),
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(rules_markdown(), end="")
