"""`integrate check --fix`: mechanical fixes that are proven not to break the code before anything
is written.

Fixes (one candidate per file and rule):
- P001: `@torch.no_grad()` added to a pipeline's `__call__` (libcst, formatting kept).
- R002: a drifted `# Copied from` block replaced by its source with the renames, exactly as
  diffusers' `make fix-copies` does (the copy keeps its own header line).
- R001: a model class under models/<family>/ registered in the three `__init__` files (as
  `--target` does) and given its dummy object.

Each candidate is built in memory and must pass, in order: parse and compile; ruff's F-codes not
above the file's count before the fix; a clean re-check of its rule (with the candidate standing in
for the files on disk); an import of every changed module in a sandboxed process (the candidate's
files overlaid on the tree, each candidate in its own forked child). A candidate that fails any of
them is dropped and reported with the reason; only the others are written.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
import libcst.matchers as m

from agent.checks.registry import Finding


@dataclass
class Candidate:
    rule: str
    path: Path  # the file the findings are in
    changes: dict[Path, str]  # file -> new text
    modules: list[str] = field(default_factory=list)  # to import after the fix
    attrs: list[tuple[str, str]] = field(default_factory=list)  # (module, name) to look up


@dataclass
class FixResult:
    rule: str
    path: str
    applied: bool
    reason: str = ""  # why it was dropped
    files: list[str] = field(default_factory=list)


# --- building candidates -----------------------------------------------------------------------
class _AddNoGrad(cst.CSTTransformer):
    def __init__(self, classes: set[str]) -> None:
        self.classes = classes
        self.stack: list[str] = []
        self.changed = 0

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.stack.append(node.name.value)

    def leave_ClassDef(self, original, updated):
        self.stack.pop()
        return updated

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if updated.name.value != "__call__" or not self.stack or self.stack[-1] not in self.classes:
            return updated
        no_grad = m.Call(func=m.Attribute(value=m.Name("torch"), attr=m.Name("no_grad") | m.Name("inference_mode")))
        if any(m.matches(d.decorator, no_grad) for d in updated.decorators):
            return updated
        self.changed += 1
        return updated.with_changes(decorators=[cst.Decorator(cst.parse_expression("torch.no_grad()")), *updated.decorators])


def _no_grad_candidate(path: Path, text: str, findings: list[Finding]) -> Candidate | None:
    classes = {f.message.split(".", 1)[0] for f in findings}
    module = cst.parse_module(text)
    fixer = _AddNoGrad(classes)
    new = module.visit(fixer)
    if not fixer.changed:
        return None
    code = new.code
    if not any(isinstance(n, ast.Import) and any(a.name == "torch" and not a.asname for a in n.names) for n in ast.parse(code).body):
        code = "import torch\n" + code
    return Candidate("P001", path, {path: code})


def _copies_candidate(path: Path, text: str) -> Candidate | None:
    from agent.checks.copies import copies, drifted, expected, file_lines
    from agent.checks.tree import installed_root, package_root

    root = package_root(path) or installed_root()
    if root is None:
        return None
    lines = file_lines(text)
    replace = []
    for c in copies(lines, root):
        if not drifted(c, lines):
            continue
        code = expected(c, lines)
        start = c.start
        header = lines[c.header] if c.header >= 0 else ""
        if not _compiles(header + code):
            # make fix-copies keeps the copy's own header line; when that line cannot carry the
            # source's code (a one-line signature before multi-line parameters), the header is
            # taken from the source too, with the copy's own name
            whole = _source_header(root, c, header)
            if whole is None:
                continue
            start, code = c.header, whole + code
        replace.append((start, c.end, code))
    if not replace:
        return None
    for start, end, code in sorted(replace, reverse=True):
        lines[start:end] = [code]
    return Candidate("R002", path, {path: "".join(lines)})


def _compiles(block: str) -> bool:
    import textwrap

    try:
        compile(textwrap.dedent(block), "<copy>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _source_header(root: Path, copy, own_header: str) -> str | None:
    import re

    from agent.checks.copies import apply_renames, indent_of, source_block

    found = source_block(root, copy.target)
    if found is None:
        return None
    header = apply_renames(found[0], copy.renames) if copy.renames else found[0]
    own = re.match(r"^(\s*)(?:async\s+)?(?:def|class)\s+(\w+)", own_header)
    src = re.match(r"^(\s*)((?:async\s+)?(?:def|class)\s+)(\w+)", header)
    if own is None or src is None:
        return None
    return own.group(1) + src.group(2) + own.group(2) + header[src.end():] if indent_of(header) is not None else None


def _dummy_class(name: str, backends: list[str]) -> str:
    b = "[" + ", ".join(f'"{x}"' for x in backends) + "]"
    return (
        f"\n\nclass {name}(metaclass=DummyObject):\n    _backends = {b}\n\n    def __init__(self, *args, **kwargs):\n"
        f"        requires_backends(self, {b})\n\n    @classmethod\n    def from_config(cls, *args, **kwargs):\n"
        f"        requires_backends(cls, {b})\n\n    @classmethod\n    def from_pretrained(cls, *args, **kwargs):\n"
        f"        requires_backends(cls, {b})\n"
    )


def _with_dummy(text: str, name: str, backends: list[str]) -> str:
    """The dummy objects file with a dummy for `name`, placed in name order like make fix-copies."""
    if f"class {name}(" in text:
        return text
    tree = ast.parse(text)
    after = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.lower() > name.lower()]
    lines = text.split("\n")
    if not after:
        return text.rstrip("\n") + _dummy_class(name, backends)
    at = after[0].lineno - 1
    block = _dummy_class(name, backends).strip("\n").split("\n") + ["", ""]
    return "\n".join(lines[:at] + block + lines[at:])


def _registration_candidate(path: Path, findings: list[Finding]) -> Candidate | None:
    from agent.checks.tree import package_root, parse_init
    from agent.registration import RegistrationError, register_model

    root = package_root(path)
    if root is None:
        return None
    rel = path.resolve().relative_to(root).parts
    if rel[0] != "models" or len(rel) != 3:
        return None  # pipelines and nested layouts: reported, not fixed
    family, module = rel[1], Path(rel[2]).stem
    names = [f.message.split(":", 1)[0] for f in findings]
    inits = [root / "__init__.py", root / "models" / "__init__.py", root / "models" / family / "__init__.py"]
    with tempfile.TemporaryDirectory(prefix="integrate-fix-") as tmp:
        copy_root = Path(tmp) / "src" / "diffusers"
        for init in inits:
            target = copy_root / init.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(init.read_text())
        try:
            for name in names:
                register_model(copy_root.parent, module, name, family)
        except RegistrationError:
            return None
        changes = {init: (copy_root / init.relative_to(root)).read_text() for init in inits}
    from agent.checks.tree import dummy_file

    top = parse_init(root / "__init__.py", changes[root / "__init__.py"])
    for name in names:
        for dummy in sorted(top.dummy_of.get(name, ())):
            backend = top.typed[name][0][0]
            dpath = dummy_file(root, root, dummy)
            text = changes.get(dpath, dpath.read_text() if dpath.is_file() else "")
            changes[dpath] = _with_dummy(text, name, backend.split("_and_"))
    module_name = ".".join(["diffusers", *Path(*rel).with_suffix("").parts])
    return Candidate("R001", path, changes, modules=[module_name], attrs=[("diffusers", n) for n in names])


def candidates(findings: list[Finding]) -> list[Candidate]:
    by: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        if f.rule in ("P001", "R002", "R001"):
            by[(f.path, f.rule)].append(f)
    out = []
    for (file, rule), items in sorted(by.items()):
        path = Path(file)
        try:
            text = path.read_text()
            if rule == "P001":
                c = _no_grad_candidate(path, text, items)
            elif rule == "R002":
                c = _copies_candidate(path, text)
            else:
                c = _registration_candidate(path, items)
        except (OSError, SyntaxError, cst.ParserSyntaxError, UnicodeDecodeError):
            c = None
        if c is not None:
            out.append(c)
    return out


# --- proving a candidate -------------------------------------------------------------------------
# Re-exports are what an `__init__` is for (diffusers' own ruff config ignores these there).
INIT_IGNORES = "F401,F403,F405"


def _ruff_f(text: str, name: str) -> list[str]:
    from ruff.__main__ import find_ruff_bin

    cmd = [find_ruff_bin(), "check", "--isolated", "--select", "F", "--output-format", "json", "--stdin-filename", name, "-"]
    if name == "__init__.py":
        cmd[4:4] = ["--ignore", INIT_IGNORES]
    proc = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=120)
    try:
        return [d["code"] for d in json.loads(proc.stdout or "[]")]
    except ValueError:
        return []


def _static_gates(c: Candidate) -> str:
    """'' when the candidate parses, compiles, keeps ruff's F-codes and re-checks clean."""
    for path, text in c.changes.items():
        try:
            compile(text, str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            return f"the fixed {path.name} does not compile: {exc}"
        before = _ruff_f(path.read_text() if path.is_file() else "", path.name)
        after = _ruff_f(text, path.name)
        if len(after) > len(before):
            new = sorted(set(after) - set(before)) or sorted(set(after))
            return f"ruff F-codes in {path.name} rose from {len(before)} to {len(after)} ({', '.join(new)})"
    from agent.checks.engine import check_source
    from agent.checks.tree import OVERLAY

    OVERLAY.clear()
    OVERLAY.update({str(p.resolve()): t for p, t in c.changes.items()})
    try:
        text = c.changes.get(c.path) or c.path.read_text()
        left = [f for f in check_source(c.path, text, [c.rule], include_deprecated=True) if f.rule == c.rule]
    finally:
        OVERLAY.clear()
    if left:
        return f"the re-check still finds {c.rule}: {left[0].message}"
    return ""


def _module_name(path: Path) -> tuple[str, Path | None]:
    from agent.checks.tree import module_name, package_root

    root = package_root(path)
    return module_name(path, root), root


def _probe_entries(cands: list[Candidate], work: Path, fixed: bool) -> tuple[list[dict], set[Path]]:
    """Probe entries: each candidate's changed modules (its files overlaid when `fixed`)."""
    entries, ro = [], set()
    for i, c in enumerate(cands):
        files, search, modules = {}, {}, list(c.modules)
        for j, (path, text) in enumerate(c.changes.items()):
            name, root = _module_name(path)
            if root is None:
                name = f"integrate_fix_candidate_{i}"
                modules.append(name)
                ro.add(path.resolve().parent)
                files[name] = [str(path.resolve()), str(path.resolve())]  # unfixed: by path
            else:
                ro.add(root.parent)
                if name not in modules and path.name != "__init__.py":
                    modules.append(name)
            if fixed:
                target = work / "candidates" / str(i) / f"{j}_{path.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                files[name] = [str(target), str(path.resolve())]
                if path.name == "__init__.py":
                    search[name] = [str(path.resolve().parent)]
        entries.append({"files": files, "search": search, "modules": modules, "attrs": [list(a) for a in c.attrs] if fixed else []})
    return entries, ro


def _run_probe(entries: list[dict], ro: set[Path], work: Path, timeout: float, tag: str) -> list[str] | str:
    import sandbox

    paths = sorted({str(p) for p in ro})
    preload = ["diffusers"] if any(Path(p, "diffusers", "__init__.py").is_file() for p in paths) else []
    manifest = work / f"manifest-{tag}.json"
    manifest.write_text(json.dumps({"path": paths, "preload": preload, "candidates": entries}))
    probe = work / "probe.py"
    probe.write_text((Path(__file__).parent / "import_probe.py").read_text())
    result = work / f"result-{tag}.json"
    res = sandbox.run([sys.executable, str(probe), str(manifest), str(result)], work, ro_paths=sorted(ro),
                      limits=sandbox.Limits(wall_s=timeout))
    try:
        return json.loads(result.read_text())
    except (OSError, ValueError):
        return f"the sandboxed import did not finish ({res.reason}): {res.stderr.strip()[-300:]}"


def _import_gate(cands: list[Candidate], timeout: float | None = None) -> list[str]:
    """Import each candidate's changed modules with the fix overlaid, in one sandboxed process
    (a forked child per candidate); '' for those that import. Where the fixed module does not
    import, the unfixed one is tried too: a module that did not import before cannot be verified."""
    if not cands:
        return []
    timeout = timeout or 120.0 + 30.0 * len(cands)
    with tempfile.TemporaryDirectory(prefix="integrate-fix-") as tmp:
        work = Path(tmp)
        entries, ro = _probe_entries(cands, work, fixed=True)
        after = _run_probe(entries, ro, work, timeout, "fixed")
        if isinstance(after, str):
            return [after] * len(cands)
        failing = [i for i, e in enumerate(after) if e]
        before: dict[int, str] = {}
        if failing:
            entries, ro = _probe_entries([cands[i] for i in failing], work, fixed=False)
            got = _run_probe(entries, ro, work, timeout, "unfixed")
            before = dict(zip(failing, got if isinstance(got, list) else [got] * len(failing), strict=True))
    out = []
    for i, error in enumerate(after):
        if error and before.get(i):
            out.append(f"cannot be verified: the unfixed module does not import either ({before[i]})")
        elif error:
            out.append(f"the fixed module does not import: {error}")
        else:
            out.append("")
    return out


def _write(path: Path, text: str) -> None:
    """Replace a file's content atomically, keeping its permissions."""
    mode = path.stat().st_mode if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fix_findings(findings: list[Finding], recheck=None, import_timeout: float | None = None, rounds: int = 5) -> list[FixResult]:
    """Prove and apply the fixes for `findings`; one result per candidate (applied, or why not).

    Candidates that change the same file go in separate rounds, each built from the files as the
    previous round left them: `recheck()` returns fresh findings between rounds."""
    results: list[FixResult] = []
    tried: set[tuple[str, str]] = set()
    for _ in range(rounds):
        batch, busy = [], set()
        for c in candidates(findings):
            key = (str(c.path), c.rule)
            files = {str(p.resolve()) for p in c.changes}
            if key in tried or files & busy:
                continue
            tried.add(key)
            busy |= files
            batch.append(c)
        if not batch:
            break
        passed: list[Candidate] = []
        for c in batch:
            reason = _static_gates(c)
            if reason:
                results.append(FixResult(c.rule, str(c.path), False, reason))
            else:
                passed.append(c)
        for c, reason in zip(passed, _import_gate(passed, import_timeout), strict=True):
            if reason:
                results.append(FixResult(c.rule, str(c.path), False, reason))
                continue
            for path, text in c.changes.items():
                _write(path, text)
            results.append(FixResult(c.rule, str(c.path), True, files=[str(p) for p in c.changes]))
        if recheck is None:
            break
        findings = recheck()
    return sorted(results, key=lambda r: (r.path, r.rule))
