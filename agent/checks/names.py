"""What a name in a file stands for: imports, aliases and simple assignments resolved to dotted paths.

Rules ask `names.qualify(node)` instead of matching source text, so `F.scaled_dot_product_attention`,
`from torch.nn.functional import scaled_dot_product_attention as sdpa`, `attn = F.scaled_dot_product_attention`
and `getattr(F, "scaled_dot_product_attention")` all come back as
`torch.nn.functional.scaled_dot_product_attention`. Unbound names that are builtins come back as
`builtins.<name>`. Resolution is flow-insensitive on purpose: a name bound to a module anywhere in
the file counts everywhere, which is what checks for forbidden things want.
"""

from __future__ import annotations

import ast
import builtins

from agent.checks.registry import walk

BUILTIN_NAMES = frozenset(dir(builtins))


def _const_str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def absolute_module(module: str | None, level: int, current: str) -> str:
    """`from ..utils import x` inside `diffusers.models.attention` -> `diffusers.utils`."""
    if not level:
        return module or ""
    parts = current.split(".") if current else []
    base = parts[: len(parts) - level] if len(parts) >= level else []
    if not base:
        return "." * level + (module or "")
    return ".".join([*base, module] if module else base)


class Names:
    def __init__(self, tree: ast.Module, module: str = "", nodes: list[ast.AST] | None = None) -> None:
        self.module = module
        self.table: dict[str, str] = {}  # imports and assignment aliases
        self.imports: dict[str, str] = {}  # imports only
        self.bound: set[str] = set()  # every name the file binds (so it is not the builtin)
        self._collect(nodes if nodes is not None else list(ast.walk(tree)))

    # building ----------------------------------------------------------------------------------
    def _collect(self, nodes: list[ast.AST]) -> None:
        """From statements (or any nodes): imports, definitions, assignments, loop and with targets."""
        assigns: list[tuple[str, ast.expr]] = []

        def store(target: ast.AST) -> None:
            if target.__class__ is ast.Name:  # most targets: no walk needed
                if isinstance(target.ctx, (ast.Store, ast.Del)):
                    self.bound.add(target.id)
                return
            for n in walk(target):
                if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                    self.bound.add(n.id)

        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.table.setdefault(a.asname, a.name)
                        self.bound.add(a.asname)
                    else:
                        top = a.name.split(".")[0]
                        self.table.setdefault(top, top)
                        self.bound.add(top)
            elif isinstance(node, ast.ImportFrom):
                base = absolute_module(node.module, node.level, self.module)
                for a in node.names:
                    if a.name == "*":
                        continue
                    local = a.asname or a.name
                    self.table.setdefault(local, f"{base}.{a.name}" if base else a.name)
                    self.bound.add(local)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound.add(node.name)
                if not isinstance(node, ast.ClassDef):
                    args = node.args
                    for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                        if a is not None:
                            self.bound.add(a.arg)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    store(t)
                if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    assigns.append((node.targets[0].id, node.value))
            elif isinstance(node, ast.AnnAssign):
                store(node.target)
                if node.value is not None and isinstance(node.target, ast.Name):
                    assigns.append((node.target.id, node.value))
            elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)):
                store(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        store(item.optional_vars)
            elif isinstance(node, ast.Try):
                self.bound |= {h.name for h in node.handlers if h.name}
            elif isinstance(node, ast.NamedExpr):
                self.bound.add(node.target.id)
                assigns.append((node.target.id, node.value))
            elif isinstance(node, ast.Lambda):
                self.bound |= {a.arg for a in walk(node.args) if isinstance(a, ast.arg)}
            elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.bound.add(node.id)
        self.imports = dict(self.table)
        # aliases through assignment (`attn = F.scaled_dot_product_attention`), to a fixed point
        for _ in range(3):
            changed = False
            for name, value in assigns:
                if name in self.table:
                    continue
                target = self.qualify(value)
                if target:
                    self.table[name] = target
                    changed = True
            if not changed:
                break

    # asking ------------------------------------------------------------------------------------
    def qualify(self, node: ast.AST | None, aliases: bool = True) -> str:
        """The dotted path `node` refers to, or '' when it is not a name the file can resolve.
        `aliases=False` resolves imports only (for code where a name may be a local variable)."""
        if isinstance(node, ast.Name):
            table = self.table if aliases else self.imports
            if node.id in table:
                return table[node.id]
            if node.id not in self.bound and node.id in BUILTIN_NAMES:
                return f"builtins.{node.id}"
            return ""
        if isinstance(node, ast.Attribute):
            base = self.qualify(node.value, aliases)
            if base == "builtins.__builtins__":
                return f"builtins.{node.attr}"
            if base == "builtins.__dict__" or node.attr == "__dict__":
                return f"{base}.__dict__" if base else ""
            return f"{base}.{node.attr}" if base else ""
        if isinstance(node, ast.Call):
            func = self.qualify(node.func)
            first = node.args[0] if node.args else None
            if func == "builtins.getattr" and len(node.args) >= 2 and _const_str(node.args[1]):
                base = self.qualify(first)
                return f"{base}.{node.args[1].value}" if base else ""
            if func in ("importlib.import_module", "builtins.__import__") and _const_str(first):
                return first.value
            if func in ("sys.modules.get",) and _const_str(first):
                return first.value
            if func == "builtins.vars" and first is not None:
                base = self.qualify(first)
                return f"{base}.__dict__" if base else ""
            return ""
        if isinstance(node, ast.Subscript):
            base = self.qualify(node.value)
            key = _const_str(node.slice)
            if base == "sys.modules" and key:
                return key
            if base.endswith(".__dict__") and key:
                return f"{base[: -len('.__dict__')]}.{key}"
            if base == "builtins.__builtins__" and key:
                return f"builtins.{key}"
            return ""
        return ""

    def is_module_path(self, qualified: str, *prefixes: str) -> bool:
        """`qualified` is one of `prefixes` or inside one of them (`torch.nn` inside `torch`)."""
        return any(qualified == p or qualified.startswith(p + ".") for p in prefixes)
