"""Run the registered rules over files: suppression comments, parallel workers, a content cache."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from agent.checks.registry import RULES, FileContext, Finding

SUPPRESS_LINE = re.compile(r"#\s*integrate:\s*ignore(?:\[([A-Za-z0-9_,\s-]+)\])?")
SUPPRESS_FILE = re.compile(r"#\s*integrate:\s*ignore-file\[([A-Za-z0-9_,\s-]+)\]")
RULE_CRASHED = "E998"  # the CLI exits 2 when it sees one
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", "build", "dist"}


def iter_python_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
                files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
        else:
            raise FileNotFoundError(str(p))
    return files


def _ids(text: str | None) -> set[str] | None:
    return None if text is None else {t.strip().upper() for t in text.split(",") if t.strip()}


def _suppressed(finding: Finding, ctx: FileContext, file_ids: set[str]) -> bool:
    if finding.rule in file_ids:
        return True
    if 1 <= finding.line <= len(ctx.lines):
        match = SUPPRESS_LINE.search(ctx.lines[finding.line - 1])
        if match:
            ids = _ids(match.group(1))
            return ids is None or finding.rule in ids
    return False


def check_source(path: Path, source: str, rule_ids: Sequence[str]) -> list[Finding]:
    from agent.checks import rules as _  # noqa: F401  (registers every rule)

    rule_ids = [r for r in rule_ids if RULES[r].applies(source)]
    if not rule_ids:
        return []
    lines = source.splitlines()
    text_ctx = FileContext(path=path, source=source, tree=None, lines=lines)
    contexts: dict[str, list[FileContext]] = {"text": [text_ctx]}
    if any(RULES[r].kind == "ast" for r in rule_ids):
        try:
            contexts["ast"] = [FileContext.parse(path, source)]
        except SyntaxError as exc:
            return [Finding("E999", str(path), exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")]
    if any(RULES[r].kind == "call" for r in rule_ids):
        contexts["call"] = call_contexts(path, source, lines)
    file_ids: set[str] = set()
    for line in lines:
        match = SUPPRESS_FILE.search(line)
        if match:
            file_ids |= _ids(match.group(1)) or set()
    findings = []
    for rule_id in rule_ids:
        rule = RULES[rule_id]
        for ctx in contexts.get(rule.kind, []):
            try:
                found = rule.run(ctx)
            except Exception as exc:  # a bug in a rule must not hide the other rules' findings
                findings.append(Finding(RULE_CRASHED, str(path), 1, 1, f"rule {rule_id} crashed: {exc.__class__.__name__}: {exc}"))
                continue
            findings += [f for f in found if not _suppressed(f, text_ctx, file_ids)]
    return findings


_DEF_CALL = re.compile(r"^(\s*)def __call__\(")
_CLASS = re.compile(r"^(\s*)class\s+(\w+)\s*(?:\(([^)]*)\))?\s*:")


def block_end(lines: list[str], start: int, indent: int) -> int:
    """End (exclusive) of the def/class whose header starts at `start`: past the signature (which
    may close on a line indented like `def`, so brackets are balanced first), up to the first line
    indented at or left of `indent` (a comment there starts the next block); trailing blank lines
    are dropped."""
    depth, j = 0, start
    while j < len(lines):
        depth += lines[j].count("(") + lines[j].count("[") - lines[j].count(")") - lines[j].count("]")
        if depth <= 0 and lines[j].rstrip().endswith(":"):
            break
        j += 1
    end = j + 1
    while end < len(lines):
        text = lines[end]
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            break
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def def_slices(lines: list[str], def_line: re.Pattern) -> list[tuple[int, int, int, str]]:
    """(start, end, indent, dedented text) of each function whose `def` line matches, with its
    decorators; the end is found by indentation, after the signature's brackets balance."""
    out = []
    for i, line in enumerate(lines):
        m = def_line.match(line)
        if not m:
            continue
        indent = len(line) - len(line.lstrip())
        start = i
        while start > 0 and lines[start - 1].strip().startswith("@"):
            start -= 1
        end = block_end(lines, i, indent)
        chunk = "\n".join(text[indent:] if text[:indent].strip() == "" else text for text in lines[start:end])
        out.append((start, end, indent, chunk))
    return out


def call_contexts(path: Path, source: str, lines: list[str]) -> list[FileContext]:
    """Each `def __call__` (with its decorators) parsed on its own, with its owning class."""
    out = []
    for start, _end, indent, chunk in def_slices(lines, _DEF_CALL):
        try:
            tree = ast.parse(chunk)
        except SyntaxError:
            continue
        i = next(k for k in range(start, len(lines)) if _DEF_CALL.match(lines[k]))
        owner, bases = "", ()
        for k in range(i - 1, -1, -1):
            c = _CLASS.match(lines[k])
            if c and len(c.group(1)) < indent:
                owner = c.group(2)
                bases = tuple(b.strip().split(".")[-1] for b in (c.group(3) or "").split(",") if b.strip() and "=" not in b)
                break
        out.append(FileContext(path=path, source=source, tree=tree, lines=lines, line_offset=start, col_offset=indent, class_name=owner, class_bases=bases))
    return out


def _ruleset_key(rule_ids: Sequence[str]) -> str:
    rules_dir = Path(__file__).parent / "rules"
    h = hashlib.sha256(",".join(sorted(rule_ids)).encode())
    for f in sorted([*rules_dir.glob("*.py"), Path(__file__).parent / "registry.py", Path(__file__)]):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("INTEGRATE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "integrate"
    )
    return Path(base) / "checks"


def _check_file(args: tuple[str, tuple[str, ...], str | None]) -> list[dict]:
    path_str, rule_ids, cache_root = args
    path = Path(path_str)
    data = path.read_bytes()
    entry = None
    if cache_root:
        digest = hashlib.sha256(data + path_str.encode()).hexdigest()
        entry = Path(cache_root) / digest[:2] / f"{digest}.json"
        if entry.exists():
            try:
                return json.loads(entry.read_text())
            except ValueError:
                pass
    findings = [f.to_dict() for f in check_source(path, data.decode("utf-8", errors="replace"), rule_ids)]
    if entry is not None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(findings))
            os.replace(tmp, entry)
        except OSError:
            pass
    return findings


def check_paths(
    paths: Iterable[str | Path],
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    use_cache: bool = True,
    jobs: int | None = None,
) -> list[Finding]:
    from agent.checks import rules as _  # noqa: F401
    from agent.checks.registry import resolve_ids

    rule_ids = sorted(resolve_ids(select) if select else RULES)
    if ignore:
        rule_ids = sorted(set(rule_ids) - resolve_ids(ignore))
    files = iter_python_files(paths)
    cache_root = str(cache_dir() / _ruleset_key(rule_ids)) if use_cache else None
    work = [(str(f), tuple(rule_ids), cache_root) for f in files]
    jobs = jobs or min(len(work), os.cpu_count() or 1)
    if len(work) > 16 and jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_check_file, work, chunksize=max(1, len(work) // (jobs * 8))))
    else:
        results = [_check_file(w) for w in work]
    findings = [Finding(**d) for batch in results for d in batch]
    return sorted(findings, key=lambda f: (f.path, f.line, f.col, f.rule))
