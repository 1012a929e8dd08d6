"""Run the registered rules over files: one parse per file, suppression comments, parallel
workers, and a cache keyed by each file and by everything its findings depend on."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from agent.checks.cache import Entry, cache_dir, code_version
from agent.checks.registry import RULES, SYNTAX_ERROR, FileContext, Finding

SUPPRESS_LINE = re.compile(r"#\s*integrate:\s*ignore(?:\[([A-Za-z0-9_,\s-]+)\])?")
SUPPRESS_FILE = re.compile(r"#\s*integrate:\s*ignore-file\[([A-Za-z0-9_,\s-]+)\]")
RULE_CRASHED = "E998"  # the CLI exits 2 when it sees one
SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", "build", "dist", ".tox", ".mypy_cache", ".ruff_cache"}


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


def _suppressions(lines: list[str]) -> tuple[set[str], dict[int, set[str] | None]]:
    file_ids: set[str] = set()
    by_line: dict[int, set[str] | None] = {}
    for i, line in enumerate(lines, 1):
        if "integrate:" not in line:
            continue
        m = SUPPRESS_FILE.search(line)
        if m:
            file_ids |= _ids(m.group(1)) or set()
            continue
        m = SUPPRESS_LINE.search(line)
        if m:
            by_line[i] = _ids(m.group(1))
    return file_ids, by_line


def _keep(f: Finding, file_ids: set[str], by_line: dict[int, set[str] | None]) -> bool:
    if f.rule in file_ids:
        return False
    if f.line in by_line:
        ids = by_line[f.line]
        return ids is not None and f.rule not in ids
    return True


def merge_same_place(findings: list[Finding]) -> list[Finding]:
    """One finding per rule and line: repeated messages at one place are joined, not repeated."""
    out: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.rule, f.path, f.line)
        if key not in out:
            out[key] = f
        elif f.message not in out[key].message:
            prev = out[key]
            out[key] = Finding(prev.rule, prev.path, prev.line, min(prev.col, f.col), f"{prev.message}; {f.message}")
    return list(out.values())


def _rules_for(path: Path, source: str, rule_ids: Sequence[str], include_deprecated: bool, deprecated: bool) -> list[str]:
    searched: dict[str, bool] = {}  # rules share trigger texts: each is searched for once per file
    return [
        r for r in rule_ids
        if (include_deprecated or not deprecated or RULES[r].on_deprecated) and RULES[r].applies(source, searched)
    ]


def check_source(
    path: Path, source: str, rule_ids: Sequence[str], include_deprecated: bool = False, entry: Entry | None = None
) -> list[Finding]:
    """Check one file's text; `entry` (the cache) supplies and receives per-rule results."""
    from agent.checks import rules as _  # noqa: F401  (registers every rule)

    entry = entry or Entry(None, str(path), b"")
    findings: list[dict] = []
    if entry.data.get("parsed") and entry.data.get("syntax"):
        return [Finding(**entry.data["syntax"])]
    ctx = None
    if not entry.data.get("parsed"):
        try:
            ctx = FileContext.parse(path, source)
        except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes
            lineno = getattr(exc, "lineno", None) or 1
            offset = getattr(exc, "offset", None) or 1
            msg = getattr(exc, "msg", None) or str(exc)
            syntax = Finding(SYNTAX_ERROR, str(path), lineno, offset, f"syntax error: {msg}")
            entry.data.update(parsed=True, syntax=syntax.to_dict())
            entry.dirty = True
            return [syntax]
        entry.data.update(parsed=True, syntax=None)
        entry.dirty = True
    from agent.checks.tree import module_name, package_root, resolved

    root = ctx.root if ctx else package_root(path)
    deprecated = root is not None and "deprecated" in resolved(path).relative_to(root).parts[:-1]
    crashed: list[Finding] = []
    for rule_id in _rules_for(path, source, rule_ids, include_deprecated, deprecated):
        cached = entry.result(rule_id)
        if cached is not None:
            findings += cached
            continue
        if ctx is None:
            import ast

            ctx = FileContext(path=path, source=source, tree=ast.parse(source, filename=str(path)), lines=source.splitlines(), root=root, module=module_name(path, root))
        ctx.deps = set()
        try:
            got = [f.to_dict() for f in RULES[rule_id].run(ctx)]
        except Exception as exc:  # a bug in a rule must not hide the other rules' findings
            crashed.append(Finding(RULE_CRASHED, str(path), 1, 1, f"rule {rule_id} crashed: {exc.__class__.__name__}: {exc}"))
            continue
        entry.store(rule_id, got, ctx.deps)
        findings += got
    file_ids, by_line = _suppressions(ctx.lines if ctx is not None else source.splitlines())
    kept = [f for f in (Finding(**d) for d in findings) if _keep(f, file_ids, by_line)]
    return merge_same_place(kept) + crashed


def _check_file(args: tuple[str, tuple[str, ...], str | None, bool]) -> list[dict]:
    path_str, rule_ids, cache_root, include_deprecated = args
    path = Path(path_str)
    data = path.read_bytes()
    entry = Entry(Path(cache_root) if cache_root else None, path_str, data)
    findings = check_source(path, data.decode("utf-8", errors="replace"), rule_ids, include_deprecated, entry)
    entry.save()
    return [f.to_dict() for f in findings]


def check_paths(
    paths: Iterable[str | Path],
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    use_cache: bool = True,
    jobs: int | None = None,
    include_deprecated: bool = False,
) -> list[Finding]:
    """Findings for every Python file under `paths`, sorted by place.

    `select`/`ignore` take rule ids, names or id prefixes. Files under a `deprecated` folder of
    diffusers are checked only by the copy-consistency rules unless `include_deprecated`.
    """
    from agent.checks import indexes
    from agent.checks import rules as _  # noqa: F401
    from agent.checks.registry import resolve_ids

    indexes.new_run()
    rule_ids = sorted(resolve_ids(select) if select else (r for r in RULES if RULES[r].default))
    if ignore:
        rule_ids = sorted(set(rule_ids) - resolve_ids(ignore))
    files = iter_python_files(paths)
    cache_root = str(cache_dir() / code_version()) if use_cache else None
    work = [(str(f), tuple(rule_ids), cache_root, include_deprecated) for f in files]
    jobs = jobs or min(len(work), os.cpu_count() or 1)
    # Syntax trees are freed by reference counting; the cyclic collector only rescans them, which
    # made parsing diffusers nearly three times slower. It is off while checking (workers inherit).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if len(work) > 16 and jobs > 1:
            if cache_root is None or _probably_cold(work[:20]):
                _prepare(files, rule_ids)
            # Largest files first, in small chunks: the long pipeline files do not end up in one
            # worker's last chunk while the other worker idles (findings are sorted below anyway).
            by_size = sorted(work, key=lambda w: -_size(w[0]))
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(_check_file, by_size, chunksize=max(1, min(8, len(work) // (jobs * 16)))))
        else:
            results = [_check_file(w) for w in work]
    finally:
        if collecting:
            gc.enable()
    findings = [Finding(**d) for batch in results for d in batch]
    return sorted(findings, key=lambda f: (f.path, f.line, f.col, f.rule))


def check_port(paths: Iterable[str | Path], use_cache: bool = False, **kwargs) -> list[Finding]:
    """Every rule, the port-only ones (tampering) included: what verification of a port runs.
    Pass the result to `agent.checks.blocking()` for the findings that must fail the run."""
    from agent.checks import rules as _  # noqa: F401

    return check_paths(paths, select=sorted(RULES), use_cache=use_cache, **kwargs)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _probably_cold(sample: list[tuple]) -> bool:
    """Most of a sample of files have no cache entry (a warm run skips building shared indexes)."""
    missing = 0
    for path_str, _rules, cache_root, _dep in sample:
        try:
            if not Entry(Path(cache_root), path_str, Path(path_str).read_bytes()).file.exists():
                missing += 1
        except OSError:
            missing += 1
    return missing * 2 > len(sample)


def _prepare(files: list[Path], rule_ids: Sequence[str]) -> None:
    """Build shared indexes once in the parent, before the workers fork and inherit them."""
    from agent.checks.rules import PREPARE

    done = set()
    for rule_id in rule_ids:
        hook = PREPARE.get(rule_id)
        if hook is not None and hook not in done:
            done.add(hook)
            hook(files)
