"""Reading what the reference says about its arguments (Sphinx `:param x:`, Google `Args:` /
`Parameters:` sections, trailing `# comments` in the signature) and writing diffusers-style
docstrings: a summary, then `Parameters:` (classes) or `Args:` (forward) with
``name (`type`, defaults to `value`):`` entries."""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

import libcst as cst

from agent.porting.conventions.cstutil import code, docstring_text

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_OTHER_SECTION = re.compile(r"^\s*(Returns?|Raises|Yields|Examples?|Notes?|Outputs?)\s*:\s*$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[\w\[\], .|]+\s+)?(\w+)\s*:\s*(.*)$")
_GOOGLE = re.compile(r"^\s*(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_OTHER_FIELD = re.compile(r"^\s*:(return|returns|rtype|raises?|type)\b")


def parse(text: str | None) -> tuple[str, dict[str, str]]:
    """(summary, {argument: description}) of a docstring, whichever of the common styles it uses."""
    if not text:
        return "", {}
    summary: list[str] = []
    docs: dict[str, str] = {}
    current: str | None = None
    section: int | None = None  # indent of an Args:/Parameters: header while inside that section
    entry_indent: int | None = None
    for line in textwrap.dedent(text.expandtabs()).strip("\n").splitlines():
        stripped, indent = line.strip(), len(line) - len(line.lstrip())
        sphinx = _SPHINX.match(line)
        if sphinx:
            current, section = sphinx.group(1), None
            docs[current] = sphinx.group(2).strip()
        elif _OTHER_FIELD.match(line) or _OTHER_SECTION.match(line):
            current, section = None, None
        elif _SECTION.match(line):
            current, section, entry_indent = None, indent, None
        elif not stripped:
            current = current if section is not None else None
        elif section is not None and indent <= section:
            current, section = None, None  # prose after the section
        elif section is not None:
            google = _GOOGLE.match(line)
            if google and (entry_indent is None or indent <= entry_indent):
                current, entry_indent = google.group(1), indent
                docs[current] = google.group(3).strip()
            elif current is not None:
                docs[current] = f"{docs[current]} {stripped}".strip()
        elif current is not None:
            docs[current] = f"{docs[current]} {stripped}".strip()
        elif not docs:
            summary.append(line)
    return "\n".join(summary).strip(), {k: v for k, v in docs.items() if v}


def signature_comments(function: cst.FunctionDef) -> dict[str, str]:
    """`arg=default,  # what it is` comments in a multi-line signature."""
    out = {}
    for p in [*function.params.params, *function.params.kwonly_params]:
        ws = p.comma.whitespace_after if isinstance(p.comma, cst.Comma) else p.whitespace_after_param
        if isinstance(ws, cst.ParenthesizedWhitespace) and ws.first_line.comment:
            out[p.name.value] = ws.first_line.comment.value.lstrip("#").strip()
    return out


def argument_docs(cls: cst.ClassDef, init: cst.FunctionDef | None) -> tuple[str, dict[str, str]]:
    """What the reference says about its constructor arguments: the class docstring, then
    __init__'s docstring, then signature comments (earlier sources win)."""
    summary, docs = parse(docstring_text(cls.body.body))
    if init is not None:
        _, more = parse(docstring_text(init.body.body))
        for source in (more, signature_comments(init)):
            for k, v in source.items():
                docs.setdefault(k, v)
    return summary, docs


def type_name(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, str)):
        return type(value).__name__
    if isinstance(value, (tuple, list)):
        inner = {type_name(v) for v in value}
        item = inner.pop() if len(inner) == 1 else None
        kind = "tuple" if isinstance(value, tuple) else "list"
        return f"{kind}[{item}, ...]" if kind == "tuple" and item else f"{kind}[{item}]" if item else kind
    if isinstance(value, dict):
        return "dict"
    return None


def literal(node: cst.BaseExpression | None) -> tuple[bool, Any]:
    if node is None:
        return False, None
    try:
        return True, ast.literal_eval(code(node))
    except (ValueError, SyntaxError):
        return False, None


def entry(name: str, kind: str | None, default: str | None, optional: bool, description: str, indent: str) -> str:
    """One ``name (`type`, *optional*, defaults to `x`):`` entry and its wrapped description."""
    parts = [f"`{kind}`"] if kind else []
    if optional:
        parts.append("*optional*")
    if default is not None:
        parts.append(f"defaults to `{default}`")
    head = f"{indent}{name} ({', '.join(parts)}):" if parts else f"{indent}{name}:"
    body = textwrap.fill(description, width=110, initial_indent=indent + "    ", subsequent_indent=indent + "    ")
    return f"{head}\n{body}"


def render(summary: str, section: str, entries: list[str], tail: str = "", indent: str = "    ") -> str:
    """A docstring's text (without quotes), indented for a class or method body at `indent`."""
    parts = [textwrap.indent(summary.strip(), indent)]
    if entries:
        parts.append(f"{indent}{section}:\n" + "\n".join(entries))
    if tail:
        parts.append(textwrap.indent(tail.strip(), indent))
    return "\n" + "\n\n".join(parts) + f"\n{indent}"


def docstring_statement(text: str) -> cst.SimpleStatementLine:
    quote = 'r"""' if "\\" in text else '"""'
    return cst.SimpleStatementLine(body=[cst.Expr(cst.SimpleString(f'{quote}{text.replace(chr(34) * 3, chr(39) * 3)}"""'))])
