"""`# Copied from diffusers.X [with A->B]` blocks, read the way diffusers' `utils/check_copies.py`
reads them, so `integrate check` and `make fix-copies` agree on what is a drifted copy:

- the source of X is located by its module file and by `class`/`def` lines at exact indentation
  (4 spaces per nesting level); its code starts on the line *after* the header line, so a copy may
  rename itself and change that first line, and ends where the indentation drops (blank lines and a
  signature's closing `) -> T:` line continue it);
- the copy's code starts one line after the comment when the comment is indented like the source's
  body, otherwise two lines after (its own `def` line is skipped); it ends like the source's, or
  at an `# End copy` comment;
- nested `# Copied from` lines are dropped from the source; `with A->B` renames are regular
  expressions (`all-casing` adds the lower- and upper-case forms), and once a `with` clause is
  present the renamed source is formatted with ruff (diffusers' settings) before comparing;
- the comparison is exact text.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent.checks.registry import walk
from agent.checks.tree import stamp

ANNOTATION = re.compile(r"^(\s*)#\s*Copied from\s+diffusers\.(\S+\.\S+)\s*($|\S.*$)")
_RENAME = re.compile(r"^\s*(\S+)->(\S+)(\s+.*|$)")
_SIGNATURE_CLOSE = re.compile(r"^\s*\)(\s*->.*:|:)\s*$")
# diffusers' [tool.ruff] / [tool.ruff.format] settings
RUFF_SETTINGS = ["--line-length", "119", "--config", 'format.quote-style="double"', "--config", 'format.indent-style="space"',
                 "--config", "format.skip-magic-trailing-comma=false"]


def continues(line: str, indent: str) -> bool:
    """Whether `line` still belongs to a block whose body is indented by `indent`."""
    return line.startswith(indent) or len(line) <= 1 or _SIGNATURE_CLOSE.search(line) is not None


def indent_of(code: str) -> str:
    for line in code.split("\n"):
        if line:
            return line[: len(line) - len(line.lstrip())]
    return ""


@lru_cache(maxsize=2048)
def _lines(path: str, st: tuple) -> tuple[str, ...]:
    with open(path, encoding="utf-8", newline="\n") as f:
        return tuple(f.readlines())


def module_lines(path: Path) -> tuple[str, ...]:
    return _lines(str(path), stamp(path))


def module_file(root: Path, dotted: str) -> tuple[Path, list[str]] | None:
    """The module file of `dotted` under root and the names left inside it (shortest module first)."""
    parts = dotted.split(".")
    for cut in range(1, len(parts)):
        candidate = root.joinpath(*parts[:cut]).with_suffix(".py")
        if candidate.is_file():
            return candidate, parts[cut:]
    return None


def source_code(root: Path, dotted: str) -> tuple[str, Path] | None:
    """The code of `diffusers.<dotted>` after its header line, and the file it is in."""
    found = source_block(root, dotted)
    return None if found is None else (found[1], found[2])


def source_block(root: Path, dotted: str) -> tuple[str, str, Path] | None:
    """(header line, code after it, file) of `diffusers.<dotted>`."""
    found = module_file(root, dotted)
    if found is None:
        return None
    return _source_block(str(root), dotted, str(found[0]), stamp(found[0]))


@lru_cache(maxsize=4096)
def _source_block(root: str, dotted: str, path: str, st: tuple) -> tuple[str, str, Path] | None:
    found = module_file(Path(root), dotted)
    if found is None:
        return None
    path, names = found
    lines = module_lines(path)
    indent, i = "", 0
    for name in names:
        header = re.compile(rf"^{indent}(class|def)\s+{re.escape(name)}(\(|\:)")
        while i < len(lines) and header.search(lines[i]) is None:
            i += 1
        indent += "    "
        i += 1
    if i >= len(lines):
        return None
    start = i
    while i < len(lines) and continues(lines[i], indent):
        i += 1
    while i > start and len(lines[i - 1]) <= 1:
        i -= 1
    return lines[start - 1], "".join(lines[start:i]), path


@dataclass
class Copy:
    comment: int  # 0-based line of the annotation
    start: int  # first line of the observed copy (0-based)
    end: int  # one past its last line
    target: str  # dotted path after "diffusers."
    renames: str  # the text after the target ("with A->B"), '' when none
    theoretical: str | None  # what the copy must be (None: the source cannot be found)
    source_file: Path | None

    @property
    def header(self) -> int:
        return self.start - 1


def apply_renames(code: str, renames: str) -> str:
    for part in renames.replace("with", "").split(","):
        m = _RENAME.search(part)
        if m is None:
            continue
        old, new, option = m.groups()
        code = re.sub(old, new, code)
        if option.strip() == "all-casing":
            code = re.sub(old.lower(), new.lower(), code)
            code = re.sub(old.upper(), new.upper(), code)
    return code


def ruff_format(code: str) -> str:
    """`code` formatted as diffusers formats it (a wrapper class keeps indented code valid)."""
    from ruff.__main__ import find_ruff_bin

    wrapped = bool(indent_of(code))
    text = f"class Bla:\n{code}" if wrapped else code
    proc = subprocess.run([find_ruff_bin(), "format", "-", "--isolated", "--silent", *RUFF_SETTINGS],
                          input=text, capture_output=True, text=True, timeout=60)
    out = proc.stdout if proc.returncode == 0 else text
    return out[len("class Bla:\n"):] if wrapped else out


def copies(lines: list[str], root: Path) -> list[Copy]:
    """Every annotated copy of a file (lines with their newlines), with its theoretical code."""
    out = []
    i = 0
    while i < len(lines):
        m = ANNOTATION.search(lines[i])
        if m is None:
            i += 1
            continue
        indent, target, renames = m.groups()
        found = source_code(root, target)
        if found is None:
            out.append(Copy(i, i + 1, i + 1, target, renames, None, None))
            i += 1
            continue
        code, source_file = found
        body_indent = indent_of(code)
        start = i + 1 if indent == body_indent else i + 2
        j = start
        while True:
            j += 1
            if j >= len(lines) or not (continues(lines[j], body_indent) and re.search(f"^{body_indent}# End copy", lines[j]) is None):
                break
        while j > start and len(lines[j - 1]) <= 1:
            j -= 1
        code = "\n".join(line for line in code.split("\n") if ANNOTATION.search(line) is None)
        out.append(Copy(i, start, j, target, renames, code, source_file))
        i = j if j > i else i + 1
    return out


def expected(copy: Copy, lines: list[str]) -> str:
    """The code the copy must have, given its own header line (renames formatted like diffusers)."""
    code = copy.theoretical or ""
    if copy.renames:
        code = apply_renames(code, copy.renames)
        observed = "".join(lines[copy.start:copy.end])
        if code == observed:
            return code  # already what formatting would give on a formatted tree
        header = lines[copy.header] if copy.header >= 0 else ""
        code = ruff_format(header + code)[len(header):]
    return code


def drifted(copy: Copy, lines: list[str]) -> bool:
    return copy.theoretical is not None and "".join(lines[copy.start:copy.end]) != expected(copy, lines)


def file_lines(text: str) -> list[str]:
    """Lines with their newline, split on "\\n" only (as `readlines()` with newline="\\n" does)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


_HEADER = re.compile(r"^([ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)")
# Matched against "\n" + text: a literal first character lets the regex engine jump from line
# break to line break (a `^` under re.M is tried at every character); the same matches.
_HEADER_ANYWHERE = re.compile(r"\n([ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)")
MIN_LINES = 6  # shorter blocks (properties, one-line helpers) coincide by chance


def code_lines(header: str, body: str) -> int:
    """Statements' lines of a def or class (header line and the code after it): no docstring,
    comments or blank lines."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(header + body))
    except SyntaxError:
        return 0
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return 0
    fn = tree.body[0]
    stmts = fn.body
    if stmts and isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant) and isinstance(stmts[0].value.value, str):
        stmts = stmts[1:]
    lines = set()
    for s in stmts:
        for n in walk(s):
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
                continue
            if hasattr(n, "lineno"):
                lines.add(n.lineno)
    return len(lines)


def block_after_header(lines: list[str], header: int) -> tuple[int, int]:
    """(start, end) of the code after the header line at `header`, as check_copies delimits it."""
    indent = lines[header][: len(lines[header]) - len(lines[header].lstrip())] + "    "
    j = header + 1
    while j < len(lines) and continues(lines[j], indent):
        j += 1
    while j > header + 1 and len(lines[j - 1]) <= 1:
        j -= 1
    return header + 1, j


def dedented(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def copy_index(root: Path) -> dict[str, tuple[str, str]]:
    """dedented code -> (target, renames) for every source annotated somewhere under `root`, with
    each renaming used; built from the tree's text once per run."""
    from agent.checks.indexes import _memo, _texts

    def build():
        wanted: set[tuple[str, str]] = set()
        for _path, text in _texts(root):
            if "Copied from" not in text:
                continue
            for line in text.split("\n"):
                m = ANNOTATION.search(line)
                if m:
                    wanted.add((m.group(2), m.group(3).strip()))
        index: dict[str, tuple[str, str]] = {}
        for target, renames in sorted(wanted):
            found = source_block(root, target)
            if found is None:
                continue
            header = found[0]
            code = "\n".join(line for line in found[1].split("\n") if ANNOTATION.search(line) is None)
            if renames:
                code = apply_renames(code, renames)
            if code_lines(header, code) >= MIN_LINES:
                index.setdefault(dedented(code), (target, renames))
        return index

    return _memo(("copies", str(root)), build)


def targets_of(index: dict[str, tuple[str, str]]) -> set[str]:
    return {t for t, _ in index.values()}


def _targets(root: Path, index: dict) -> frozenset[str]:
    from agent.checks.indexes import _memo

    return _memo(("copy-targets", str(root)), lambda: frozenset(targets_of(index)))


def _source_names(root: Path, index: dict) -> frozenset[str]:
    from agent.checks.indexes import _memo

    return _memo(("copy-names", str(root)), lambda: frozenset(t.split(".")[-1] for t, _ in index.values()))


def _shapes(root: Path, index: dict) -> frozenset[tuple[str, int]]:
    """(name, number of lines) of every indexed source: a candidate of another length cannot match."""
    from agent.checks.indexes import _memo

    return _memo(("copy-shapes", str(root)), lambda: frozenset(
        (target.split(".")[-1], code.count("\n") + (0 if code.endswith("\n") else 1)) for code, (target, _r) in index.items()
    ))


def unannotated_copies(lines: list[str], root: Path, module: str, source: str | None = None):
    """(header line, target, renames) of blocks equal to an annotated source but not annotated."""
    index = copy_index(root)
    if not index:
        return
    names = _source_names(root, index)
    shapes = _shapes(root, index)
    sources = _targets(root, index)
    text = source if source is not None else "".join(lines)
    stack: list[tuple[int, str]] = []  # enclosing (indent, name) for dotted paths
    counted_to, i = 0, 0  # line numbers are counted only up to the headers that need one
    # one pass over the headers (a separate search for candidate names first cost more than it saved)
    for m in _HEADER_ANYWHERE.finditer("\n" + text):
        spaces, name = m.groups()
        indent = len(spaces)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, name))
        if name not in names:
            continue
        path = ".".join(n for _, n in stack)
        # the match starts at the "\n" put before the text: its line begins at text[m.start()]
        i += text.count("\n", counted_to, m.start())
        counted_to = m.start()
        above = i - 1
        while above >= 0 and lines[above].strip().startswith("@"):
            above -= 1
        if above >= 0 and ANNOTATION.search(lines[above]):
            continue
        dotted = f"{module[len('diffusers.'):]}.{path}" if module.startswith("diffusers.") else path
        if dotted in sources:
            continue  # a source others copy from
        start, end = block_after_header(lines, i)
        if (name, end - start) not in shapes:
            continue
        found = index.get(dedented("".join(lines[start:end])))
        if found is not None and found[0] != dotted:
            yield i, found[0], found[1]
