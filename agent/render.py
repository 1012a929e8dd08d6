"""Render files from templates/ (shipped inside the wheel)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from agent.resources import templates_dir


def markdown_cell(value: Any) -> str:
    """Text that stays inside one cell of a Markdown table (pipes escaped, one line)."""
    return " ".join(str(value).split()).replace("|", "\\|")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["py"] = repr  # a Python literal, for templates that render Python code
    env.filters["md_cell"] = markdown_cell
    return env


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)
