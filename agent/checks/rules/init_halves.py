from collections import Counter

from agent.checks.registry import Rule, register
from agent.checks.tree import parse_init


def check(ctx):
    if ctx.path.name != "__init__.py":
        return
    init = parse_init(ctx.path, ctx.source)
    if not init.lazy or not init.type_checking_line:
        return
    lazy, typed = init.backends(init.structure), init.backends(init.typed)
    for half, by_backend, where in (("_import_structure", lazy, init.structure), ("TYPE_CHECKING imports", typed, init.typed)):
        for backend, names in sorted(by_backend.items()):
            for name, n in sorted(Counter(names).items()):
                if n > 1:
                    yield where[name][-1][2], f"{name} is declared {n} times in the {half} ({backend})"
    for name in sorted(set(init.structure) - set(init.typed) - init.always):
        yield init.structure[name][0][2], f"{name} is in _import_structure but not imported under TYPE_CHECKING: `from {ctx.module or 'package'} import {name}` fails with DIFFUSERS_SLOW_IMPORT=1 and type checkers do not see it"
    for name in sorted(set(init.typed) - set(init.structure)):
        yield init.typed[name][0][2], f"{name} is imported under TYPE_CHECKING but not in _import_structure: the lazy module cannot resolve it"
    mismatched = Counter()
    first: dict[tuple[str, str], int] = {}
    for name in sorted(set(init.structure) & set(init.typed)):
        a = {b for b, _k, _l in init.structure[name]}
        b = {b for b, _m, _l in init.typed[name]}
        if a != b:
            key = (",".join(sorted(a)), ",".join(sorted(b)))
            mismatched[key] += 1
            first.setdefault(key, init.typed[name][0][2])
    for (a, b), n in sorted(mismatched.items()):
        yield first[(a, b)], f"{n} name(s) are guarded by {a} in _import_structure but by {b} under TYPE_CHECKING: without one backend the halves disagree"


RULE = register(Rule(
    id="R004",
    name="init-halves",
    scope="repository",
    summary="Both halves of a lazy __init__ declare the same objects under the same optional backends (check_inits.py).",
    what="An `__init__.py` with `_import_structure` whose lazy half and `TYPE_CHECKING` half differ: a name in one half only, a name declared twice, or a name guarded by different backends in the two halves.",
    why="At run time names resolve through `_import_structure`; type checkers and DIFFUSERS_SLOW_IMPORT=1 read the TYPE_CHECKING imports. A name in one half only works for some users and breaks for others.",
    bad='_import_structure["pipeline_x"] = ["XPipeline"]\nif TYPE_CHECKING:\n    ...  # XPipeline not imported',
    good='_import_structure["pipeline_x"] = ["XPipeline"]\nif TYPE_CHECKING:\n    from .pipeline_x import XPipeline',
    anchor="models.md#registration",
    check=check,
    on_deprecated=True,
    triggers=("_import_structure",),
))
