"""The API page of a new model in a diffusers checkout: `docs/source/en/api/models/<module>.md`.

Written the way diffusers' own model pages are: the license comment, the class name as title, one
sentence on what the model is and where it comes from (the paper the model card cites, else the
source repo), the card's own first paragraph, and an `[[autodoc]]` block for the class and for any
output dataclass the model file defines.
"""

from __future__ import annotations

import ast
import re
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from agent.render import render

DOCS_MODELS = Path("docs/source/en/api/models")
MAX_LINE = 119  # doc-builder's --max_len in diffusers' `make quality`
MAX_SUMMARY = 600

_FRONTMATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_PAPER = re.compile(r"https?://(?:arxiv\.org/(?:abs|pdf)|huggingface\.co/papers)/(\d{4}\.\d{4,5})")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_HTML = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class CardFacts:
    title: str | None
    summary: str | None
    paper: str | None  # https://huggingface.co/papers/<arxiv id>


def read_card(text: str) -> CardFacts:
    """Title (first `# ` heading), first prose paragraph and cited paper of a model card."""
    body = _FRONTMATTER.sub("", text, count=1)
    paper = _PAPER.search(body)
    title, paragraphs, current, fenced = None, [], [], False
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if stripped.startswith("#"):
            if title is None and stripped.startswith("# "):
                title = stripped[2:].strip() or None
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        cleaned = _HTML.sub("", _IMAGE.sub("", stripped)).strip()
        if not cleaned or cleaned.startswith(("|", "-", "*", ">", "[!")):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(cleaned)
    if current:
        paragraphs.append(" ".join(current))
    summary = next((p for p in paragraphs if len(p.split()) >= 5), None)
    if summary and len(summary) > MAX_SUMMARY:
        cut = summary[:MAX_SUMMARY]
        summary = cut[: cut.rfind(". ") + 1] if ". " in cut else cut.rsplit(" ", 1)[0] + " ..."
    return CardFacts(title, summary, f"https://huggingface.co/papers/{paper.group(1)}" if paper else None)


def _kind(class_name: str, family: str) -> str:
    if family == "unets":
        return "A UNet model"
    if family == "autoencoders":
        return "An autoencoder model"
    if "Transformer" in class_name or family == "transformers":
        data = "video-like" if "3D" in class_name else "image-like" if "2D" in class_name else None
        return f"A Transformer model for {data} data" if data else "A Transformer model"
    return "A model"


def description(class_name: str, family: str, card: CardFacts, source_name: str, source_url: str | None) -> str:
    """The page's prose, wrapped to doc-builder's line length."""
    name = card.title or source_name
    link = card.paper or source_url
    origin = f"[{name}]({link})" if link else name
    paragraphs = [f"{_kind(class_name, family)} from {origin}."]
    if card.summary:
        paragraphs.append(card.summary)
    return "\n\n".join(textwrap.fill(p, MAX_LINE, break_long_words=False, break_on_hyphens=False) for p in paragraphs)


def output_classes(model_source: str, family: str, module_name: str) -> list[dict[str, str]]:
    """Output dataclasses (subclasses of BaseOutput) the model file defines, for their own autodoc."""
    try:
        tree = ast.parse(model_source)
    except SyntaxError:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            (isinstance(b, ast.Name) and b.id == "BaseOutput") or (isinstance(b, ast.Attribute) and b.attr == "BaseOutput")
            for b in node.bases
        ):
            out.append({"name": node.name, "path": f"models.{family}.{module_name}.{node.name}"})
    return out


def page_path(module_name: str) -> Path:
    return DOCS_MODELS / f"{module_name}.md"


def render_page(*, class_name: str, family: str, module_name: str, card: CardFacts, source_name: str,
                source_url: str | None, model_source: str = "") -> str:
    return render(
        "docs/model.md.j2",
        year=time.strftime("%Y"),
        class_name=class_name,
        description=description(class_name, family, card, source_name, source_url),
        outputs=output_classes(model_source, family, module_name),
    )
