from agent.checks.copies import copies, drifted, file_lines
from agent.checks.registry import Rule, register
from agent.checks.tree import installed_root, resolved


def check(ctx):
    root = ctx.root or installed_root()
    if root is None:
        return
    lines = file_lines(ctx.source)
    for copy in copies(lines, root):
        if copy.theoretical is None:
            ctx.depend(f"tree:{root}")  # the source may appear anywhere
            yield copy.comment + 1, f"# Copied from diffusers.{copy.target}: the source cannot be found"
            continue
        ctx.deps.add(str(resolved(copy.source_file)))
        if drifted(copy, lines):
            spec = f" ({copy.renames.strip()})" if copy.renames.strip() else ""
            yield copy.start + 1, f"drifted from its source diffusers.{copy.target}{spec}"


RULE = register(Rule(
    id="R002",
    name="copied-from",
    scope="repository",
    summary="`# Copied from` blocks are identical to their source after the stated renames (as diffusers' check_copies.py reads them).",
    what="A block under a `# Copied from diffusers.X [with A->B]` comment whose code (after its own header line) differs from X's code with the renames applied and formatted, or whose source does not exist.",
    why="The annotation promises that fixes to the source reach the copy (make fix-copies); a drifted copy silently misses them, and diffusers' CI fails on it.",
    bad="# Copied from diffusers.models.attention.FeedForward\nclass FeedForward(nn.Module):\n    ...  # edited by hand",
    good="# Copied from diffusers.models.attention.FeedForward\nclass FeedForward(nn.Module):\n    ...  # identical to the source",
    anchor="pipelines.md#base-class",
    check=check,
    fixable=True,
    on_deprecated=True,
    triggers=("Copied from",),
))
