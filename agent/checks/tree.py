"""What a diffusers source tree says about itself: its package root, module names, the two
halves of its lazy `__init__` files per optional backend, and its dummy objects.

The `__init__` reading follows the layout diffusers' own `utils/check_inits.py` and
`utils/check_dummies.py` rely on (a lazy `_import_structure` half and a `TYPE_CHECKING` half,
each split into `try: if not is_x_available(): raise ... except: <dummies> else: <objects>`
blocks), but reads the syntax tree instead of fixed indentation.
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

from agent.checks.registry import walk

# Text that stands in for files on disk while `--fix` re-checks a candidate (resolved path -> text):
# the candidate is judged before anything is written.
OVERLAY: dict[str, str] = {}


def overlaid(path: Path) -> str | None:
    return OVERLAY.get(str(resolved(path))) if OVERLAY else None


def resolved(path: Path | str) -> Path:
    """`Path(path).resolve()`, remembered for the run (the engine clears it with the other per-run
    memos): rules ask for the same files' real paths thousands of times, and each resolve stats
    every folder on the way."""
    return _resolved(str(path))


@lru_cache(maxsize=16384)
def _resolved(path: str) -> Path:
    return Path(path).resolve()


def package_root(path: Path) -> Path | None:
    """The `diffusers` package folder that holds `path`."""
    return _package_root_of(str(Path(path).absolute().parent))


@lru_cache(maxsize=4096)
def _package_root_of(folder: str) -> Path | None:
    for parent in (Path(folder).resolve(), *Path(folder).resolve().parents):
        if parent.name == "diffusers" and (parent / "__init__.py").is_file():
            return parent
    return None


def module_name(path: Path, root: Path | None) -> str:
    """`diffusers.models.attention` for root/models/attention.py; '' outside a diffusers tree."""
    if root is None:
        return ""
    rel = resolved(path).relative_to(root).with_suffix("")
    parts = ["diffusers", *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def installed_root() -> Path | None:
    """The installed diffusers package (where `# Copied from` sources are read for standalone files)."""
    spec = importlib.util.find_spec("diffusers")
    return Path(spec.submodule_search_locations[0]).resolve() if spec and spec.submodule_search_locations else None


def _is_available_names(test: ast.AST) -> list[str]:
    return sorted(
        n.func.id[3:-10] if isinstance(n.func, ast.Name) else n.func.attr[3:-10]
        for n in walk(test)
        if isinstance(n, ast.Call)
        and (getattr(n.func, "id", None) or getattr(n.func, "attr", "")).startswith("is_")
        and (getattr(n.func, "id", None) or getattr(n.func, "attr", "")).endswith("_available")
    )


def try_backend(node: ast.Try) -> str | None:
    """`torch_and_transformers` for `try: if not (is_torch_available() and is_transformers_available()): raise`."""
    for stmt in node.body:
        if isinstance(stmt, ast.If) and any(isinstance(s, ast.Raise) for s in stmt.body):
            names = _is_available_names(stmt.test)
            if names:
                return "_and_".join(names)
    return None


@dataclass
class InitHalves:
    """One `__init__.py`: objects per backend in each half, and where each is declared."""

    path: Path
    lazy: bool  # has a `_import_structure`
    # name -> list of (backend or "none", module key relative to the package, line)
    structure: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    typed: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    # plain imports of a non-lazy init (name -> relative module)
    plain: dict[str, str] = field(default_factory=dict)
    # backend -> dummy module star-imported for it in the TYPE_CHECKING half (the last block's)
    dummies: dict[str, str] = field(default_factory=dict)
    # name -> the dummy modules of the try blocks that import it under TYPE_CHECKING
    dummy_of: dict[str, set[str]] = field(default_factory=dict)
    type_checking_line: int = 0
    # names imported at module level outside both halves (available however the init is loaded)
    always: set[str] = field(default_factory=set)

    def backends(self, half: dict) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, places in half.items():
            for backend, _key, _line in places:
                out.setdefault(backend, []).append(name)
        return out


def _strings(node: ast.AST) -> list[tuple[str, int]]:
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [(e.value, e.lineno) for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _structure_entries(stmt: ast.stmt):
    """(module key, [(name, line)]) declared by one statement of the lazy half."""
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        value = stmt.value
        for t in targets:
            if isinstance(t, ast.Name) and t.id == "_import_structure" and isinstance(value, ast.Dict):
                for k, v in zip(value.keys, value.values, strict=False):
                    if isinstance(k, ast.Constant) and isinstance(k.value, str):
                        yield k.value, _strings(v)
            elif (
                isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == "_import_structure"
                and isinstance(t.slice, ast.Constant) and isinstance(t.slice.value, str)
            ):
                yield t.slice.value, _strings(value)
    elif (
        isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Subscript) and isinstance(stmt.target.value, ast.Name)
        and stmt.target.value.id == "_import_structure" and isinstance(stmt.target.slice, ast.Constant)
    ):
        yield stmt.target.slice.value, _strings(stmt.value)
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute):
        call = stmt.value
        recv = call.func.value
        if (
            isinstance(recv, ast.Subscript) and isinstance(recv.value, ast.Name) and recv.value.id == "_import_structure"
            and isinstance(recv.slice, ast.Constant) and isinstance(recv.slice.value, str) and call.args
        ):
            key = recv.slice.value
            if call.func.attr == "extend":
                yield key, _strings(call.args[0])
            elif call.func.attr == "append" and isinstance(call.args[0], ast.Constant):
                yield key, [(call.args[0].value, call.args[0].lineno)]
        elif isinstance(recv, ast.Name) and recv.id == "_import_structure" and call.func.attr == "update" and call.args:
            if isinstance(call.args[0], ast.Dict):
                for k, v in zip(call.args[0].keys, call.args[0].values, strict=False):
                    if isinstance(k, ast.Constant) and isinstance(k.value, str):
                        yield k.value, _strings(v)


def _is_type_checking(test: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "TYPE_CHECKING" for n in walk(test))


def _star_module(stmts: list[ast.stmt]) -> str:
    for s in stmts:
        if isinstance(s, ast.ImportFrom) and any(a.name == "*" for a in s.names):
            return "." * s.level + (s.module or "")
    return ""


def _walk_half(stmts: list[ast.stmt], backend: str, visit, dummy: str = "") -> None:
    """Visit statements with the backend of the `try` block they sit in (its `else`), and the
    dummy module that block's `except` star-imports."""
    for stmt in stmts:
        if isinstance(stmt, ast.Try):
            b = try_backend(stmt) or backend
            d = next((m for h in stmt.handlers if (m := _star_module(h.body))), dummy)
            for handler in stmt.handlers:
                _walk_half(handler.body, backend, lambda s, _b, _d, b=b: visit(s, "dummy:" + b, _d), dummy)
            _walk_half(stmt.orelse, b, visit, d)
            _walk_half(stmt.body, backend, visit, dummy)
        elif isinstance(stmt, ast.If) and not _is_type_checking(stmt.test):
            names = _is_available_names(stmt.test)
            b = "_and_".join(names) if names and backend == "none" else backend
            _walk_half(stmt.body, b, visit, dummy)
            _walk_half(stmt.orelse, backend, visit, dummy)
        else:
            visit(stmt, backend, dummy)


def parse_init(path: Path, text: str) -> InitHalves:
    tree = ast.parse(text, filename=str(path))
    halves = InitHalves(path=path, lazy="_import_structure" in text)

    def lazy_visit(stmt, backend, _dummy=""):
        if backend.startswith("dummy:"):
            return
        for key, names in _structure_entries(stmt):
            for name, line in names:
                halves.structure.setdefault(name, []).append((backend, key, line))

    def typed_visit(stmt, backend, dummy=""):
        if not isinstance(stmt, ast.ImportFrom) or (stmt.level != 1 and not backend.startswith("dummy:")):
            return  # exports come from the package's own modules; `from ..utils import x` is a helper
        module = "." * stmt.level + (stmt.module or "")
        if backend.startswith("dummy:"):
            if any(a.name == "*" for a in stmt.names):
                halves.dummies[backend[len("dummy:"):]] = module
            return
        for a in stmt.names:
            halves.typed.setdefault(a.asname or a.name, []).append((backend, module, stmt.lineno))
            if dummy:
                halves.dummy_of.setdefault(a.asname or a.name, set()).add(dummy)

    top_level: list[ast.stmt] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            halves.type_checking_line = stmt.lineno
            _walk_half(stmt.body, "none", typed_visit)
        else:
            top_level.append(stmt)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                halves.always |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if halves.lazy:
        _walk_half(top_level, "none", lazy_visit)
    else:
        for node in walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                for a in node.names:
                    halves.plain[a.asname or a.name] = "." * node.level + (node.module or "")
    return halves


@lru_cache(maxsize=512)
def _parse_init_cached(path: str, stamp: tuple) -> InitHalves | None:
    try:
        return parse_init(Path(path), Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None


def stamp(path: Path) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_init(ctx, path: Path) -> InitHalves | None:
    """The halves of an `__init__.py`, recorded as a dependency of the calling rule."""
    real = str(resolved(path))
    ctx.deps.add(real)
    text = overlaid(path)
    if text is not None:
        return parse_init(Path(path), text)
    if not Path(path).is_file():
        return None
    return _parse_init_cached(real, stamp(path))


@lru_cache(maxsize=64)
def _dummy_names(path: str, stamp: tuple) -> frozenset[str]:
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return frozenset(names)


def dummy_names(ctx, path: Path) -> frozenset[str] | None:
    real = str(resolved(path))
    ctx.deps.add(real)
    text = overlaid(path)
    if text is not None:
        tree = ast.parse(text)
        return frozenset(n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)))
    if not Path(path).is_file():
        return None
    return _dummy_names(real, stamp(path))


def dummy_file(root: Path, init_dir: Path, module: str) -> Path:
    """The file a relative dummy import (`...utils.dummy_pt_objects`) names, from `init_dir`."""
    level = len(module) - len(module.lstrip("."))
    base = init_dir
    for _ in range(level - 1):
        base = base.parent
    return base.joinpath(*module.lstrip(".").split(".")).with_suffix(".py")


def relative_module(path: Path, package_dir: Path) -> str:
    """`transformers.transformer_flux` for models/transformers/transformer_flux.py from models/."""
    rel = resolved(path).relative_to(package_dir).with_suffix("")
    return ".".join(rel.parts)


def key_covers(key: str, module: str) -> bool:
    """An `_import_structure` key (or an import's module) names `module` or a package above it."""
    key = key.lstrip(".")
    return module == key or module.startswith(key + ".")
