"""Recall of `integrate check` on the planted corpus (tests/planted): real diffusers files, each
with one bug of a recurring pattern, plainly and in subtle variants.

    python benchmarks/checks_recall.py [--show-missed]

Prints recall per pattern, per variant, for plain plants and for subtle ones (targets: 80% and 60%).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from planted.harness import run_plants  # noqa: E402


def _rate(items) -> str:
    caught = sum(1 for o in items if o.caught)
    return f"{caught}/{len(items)} ({100 * caught / len(items):.0f}%)" if items else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show-missed", action="store_true")
    args = parser.parse_args()
    outcomes = run_plants()
    skipped = [o for o in outcomes if o.caught is None]
    done = [o for o in outcomes if o.caught is not None]
    by_pattern, by_variant = defaultdict(list), defaultdict(list)
    for o in done:
        by_pattern[o.plant.pattern].append(o)
        by_variant[o.plant.variant].append(o)
    print(f"plants: {len(outcomes)} ({len(skipped)} skipped: could not be applied)")
    print(f"{'pattern':<22} {'plain':>12} {'subtle':>12} {'all':>12}")
    for pattern, items in sorted(by_pattern.items()):
        plain = [o for o in items if not o.plant.subtle]
        subtle = [o for o in items if o.plant.subtle]
        print(f"{pattern:<22} {_rate(plain):>12} {_rate(subtle):>12} {_rate(items):>12}")
    print("\nby variant: " + ", ".join(f"{v} {_rate(items)}" for v, items in sorted(by_variant.items())))
    plain = [o for o in done if not o.plant.subtle]
    subtle = [o for o in done if o.plant.subtle]
    print(f"\nrecall: plain {_rate(plain)} (target 80%), subtle variants {_rate(subtle)} (target 60%), all {_rate(done)}")
    for o in skipped:
        print(f"skipped {o.plant.id}: {o.note}")
    if args.show_missed:
        for o in done:
            if not o.caught:
                print(f"missed {o.plant.id} ({o.plant.rule}, {o.plant.variant})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
