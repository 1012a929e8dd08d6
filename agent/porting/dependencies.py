"""Third-party packages the port imports at run time, and what of each it uses.

diffusers installs torch, numpy, safetensors, huggingface_hub, Pillow, regex, requests, filelock
and importlib_metadata; a model file that imports anything else (einops, timm, x_transformers)
adds a dependency diffusers will not accept. The plan lists what the reference imports (before
the port exists); the port stage lists what the port still imports and which names it uses.
Parsing only.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ACCEPTED_BY_DIFFUSERS = {
    "torch", "numpy", "diffusers", "safetensors", "huggingface_hub", "PIL", "regex", "requests", "filelock",
    "importlib_metadata", "typing_extensions",
}
WHY = "dependency diffusers will not accept"


def _is_third_party(package: str, local_packages: set[str]) -> bool:
    return bool(package) and package not in sys.stdlib_module_names and package not in ACCEPTED_BY_DIFFUSERS \
        and package not in local_packages and package != "__future__"


def port_dependencies(code: str, local_packages: set[str] = frozenset()) -> list[dict]:
    """[{package, imports, uses, lines, why}] for the third-party imports of the port's code."""
    tree = ast.parse(code)
    bound: dict[str, tuple[str, str]] = {}  # local name -> (package, what it names)
    found: dict[str, dict] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                package = alias.name.split(".")[0]
                if _is_third_party(package, local_packages):
                    local = alias.asname or package
                    bound[local] = (package, alias.name if alias.asname else package)
                    _entry(found, package)["imports"].add(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
                    _entry(found, package)["lines"].add(node.lineno)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            package = node.module.split(".")[0]
            if _is_third_party(package, local_packages):
                for alias in node.names:
                    bound[alias.asname or alias.name] = (package, f"{node.module}.{alias.name}")
                    _entry(found, package)["imports"].add(f"from {node.module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
                _entry(found, package)["lines"].add(node.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.split(".")[0] in bound:
                package, base = bound[dotted.split(".")[0]]
                _entry(found, package)["uses"].add(base + dotted[len(dotted.split(".")[0]):])
        elif isinstance(node, ast.Name) and node.id in bound and isinstance(node.ctx, ast.Load):
            package, base = bound[node.id]
            _entry(found, package)["uses"].add(base)
    out = []
    for package, entry in sorted(found.items()):
        uses = sorted(u for u in entry["uses"] if not any(v != u and v.startswith(u + ".") for v in entry["uses"]))
        out.append({"package": package, "imports": sorted(entry["imports"]), "uses": uses, "lines": sorted(entry["lines"]), "why": WHY})
    return out


def reference_dependencies(snapshot: Path, code_files: list[str]) -> list[dict]:
    """[{package, files, imports}] for the reference code (what the plan can know before the port)."""
    local = {Path(f).parts[0].removesuffix(".py") for f in code_files}
    found: dict[str, dict] = {}
    for rel in code_files:
        try:
            tree = ast.parse((snapshot / rel).read_text())
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                package = name.split(".")[0]
                if _is_third_party(package, local):
                    entry = found.setdefault(package, {"package": package, "files": set(), "imports": set()})
                    entry["files"].add(rel)
                    entry["imports"].add(name)
    return [{**e, "files": sorted(e["files"]), "imports": sorted(e["imports"]), "why": WHY} for _, e in sorted(found.items())]


def _entry(found: dict, package: str) -> dict:
    return found.setdefault(package, {"imports": set(), "uses": set(), "lines": set()})


def _dotted(node: ast.Attribute) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None
