import re
from functools import cache
from pathlib import Path

from agent.checks.engine import block_end
from agent.checks.registry import Rule, register
from agent.checks.rules.init_registration import package_root

COPIED = re.compile(r"^(\s*)# Copied from diffusers\.([\w.]+)(?:\s+with\s+(.+?))?\s*$")


def installed_root() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("diffusers")
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


@cache
def _module_lines(path: Path, mtime: float) -> list[str]:
    return path.read_text().splitlines()


def source_of(root: Path, dotted: str) -> str | None:
    """Source of `diffusers.<dotted>` (a function, class or method) from the tree at `root`,
    found by text (def/class lines and indentation): no parse of the whole module."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = root.joinpath(*parts[:cut]).with_suffix(".py")
        if not module.is_file():
            continue
        lines = _module_lines(module, module.stat().st_mtime)
        lo, hi, indent = 0, len(lines), -1
        for name in parts[cut:]:
            pattern = re.compile(rf"^(\s*)(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b")
            found = None
            for k in range(lo, hi):
                m = pattern.match(lines[k])
                if m and len(m.group(1)) > indent and (indent < 0 or len(m.group(1)) <= indent + 8):
                    found = (k, len(m.group(1)))
                    break
            if found is None:
                return None
            lo, indent = found
            hi = block_end(lines, lo, indent)
        return "\n".join(lines[lo:hi])
    return None


def apply_replacements(code: str, spec: str | None) -> str:
    """`with A->B, C->D` (and `all-casing`, which also maps lower- and upper-case forms)."""
    if not spec:
        return code
    all_casing = "all-casing" in spec
    for part in spec.replace("all-casing", "").split(","):
        # diffusers' own checker reads only `A->B` (no spaces); anything else is not a rename
        m = re.match(r"^\s*(\S+)->(\S+)\s*$", part)
        if not m:
            continue
        old, new = m.group(1), m.group(2)
        code = code.replace(old, new)
        if all_casing:
            code = code.replace(old.lower(), new.lower()).replace(old.upper(), new.upper())
    return code


def _normalise(code: str) -> str:
    """Code without layout: whitespace, line breaks and a formatter's trailing commas removed,
    since diffusers formats the theoretical copy before comparing."""
    flat = re.sub(r"\s+", "", code)
    return re.sub(r",([)\]}])", r"\1", flat)


def copied_blocks(lines: list[str]):
    """(comment line index, block start, block end, indent, dotted, replacements) per annotation."""
    for i, line in enumerate(lines):
        m = COPIED.match(line)
        if not m:
            continue
        start = i + 1
        while start < len(lines) and lines[start].strip().startswith("@"):
            start += 1
        if start >= len(lines) or not re.match(r"\s*(?:async\s+)?(?:def|class)\s", lines[start]):
            continue
        indent = len(lines[start]) - len(lines[start].lstrip())
        yield i, start, block_end(lines, start, indent), indent, m.group(2), m.group(3)


_HEADER_NAME = re.compile(r"^(\s*(?:async\s+)?(?:def|class)\s+)(\w+)")


def same_code(theoretical: str, observed: str) -> bool:
    """Equal up to layout, allowing the copy its own name (as diffusers' check does)."""
    m_obs = _HEADER_NAME.match(observed)
    if m_obs:
        theoretical = _HEADER_NAME.sub(lambda m: m.group(1) + m_obs.group(2), theoretical, count=1)
    return _normalise(theoretical) == _normalise(observed)


def check(ctx):
    root = package_root(ctx.path) or installed_root()
    if root is None:
        return
    for i, start, end, _indent, dotted, spec in copied_blocks(ctx.lines):
        original = source_of(root, dotted)
        if original is None:
            yield i + 1, f"# Copied from diffusers.{dotted}: the source cannot be found"
            continue
        if not same_code(apply_replacements(original, spec), "\n".join(ctx.lines[start:end])):
            yield start + 1, f"drifted from its source diffusers.{dotted}" + (f" (with {spec})" if spec else "")


RULE = register(Rule(
    id="R002",
    name="copied-from",
    scope="repository",
    summary="`# Copied from` blocks are identical to their source after the stated renames.",
    what="A function or class under a `# Copied from diffusers.X [with A->B]` comment whose code differs from X with the renames applied.",
    why="The annotation promises that fixes to the source reach the copy (make fix-copies); a drifted copy silently misses them, and CI fails on it.",
    bad="# Copied from diffusers.models.attention.FeedForward\nclass FeedForward(nn.Module):\n    ...  # edited by hand",
    good="# Copied from diffusers.models.attention.FeedForward\nclass FeedForward(nn.Module):\n    ...  # identical to the source",
    anchor="pipelines.md#base-class",
    check=check,
    fixable=True,
    kind="text",
    triggers=("# Copied from diffusers.",),
))
