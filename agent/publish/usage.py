"""The PR's usage example and paper link, made from the run's own data.

The usage example is not prose: in a standalone port the generated test runs it, exactly as the
PR shows it, so the PR can say it was executed (and by which test)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.render import render
from sandbox import safe_files

ARXIV = re.compile(r"https?://arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5})(?:v\d+)?")
MAX_CARD_BYTES = 1024 * 1024


def usage_example(class_name: str, module_name: str, layout: str, inputs: list[dict[str, Any]], weights: str, seed: int) -> str | None:
    """`from_pretrained` + one forward on inputs like the parity run's; None when the inputs come
    from an author's inputs file (its code is the example then, and the PR points to it)."""
    if not inputs or any(i.get("kind") == "file" or "name" not in i for i in inputs):
        return None
    if weights not in ("weights", "../converted"):  # rendered inside a string literal
        raise ValueError(f"unexpected weights location {weights!r}")
    return render("usage.py.j2", class_name=class_name, module_name=module_name, layout=layout, inputs=inputs,
                  weights=weights, seed=seed).strip() + "\n"


def paper_link(snapshot: Path, card: str | None) -> str | None:
    """The first arXiv link of the model card, as an abs URL (a card is the author's text: only
    a link of that exact form is taken from it)."""
    if not card:
        return None
    try:
        text = safe_files.read_text(snapshot, card, max_bytes=MAX_CARD_BYTES)
    except (OSError, ValueError):
        return None
    match = ARXIV.search(text)
    return f"https://arxiv.org/abs/{match.group(1)}" if match else None
