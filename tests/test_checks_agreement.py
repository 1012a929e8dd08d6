"""Our copy and dummy rules against diffusers' own utils/check_copies.py and check_dummies.py, run
on the same tree (a checkout built from the installed package, untouched, then with seeded plants).

diffusers' scripts are not in the wheel and nothing here reaches the network: point
DIFFUSERS_UTILS at a folder holding them (taken from the public diffusers repository) to run this;
without it the test is skipped, and says so. benchmarks/checks_agreement.py prints the same
comparison with its figures (docs/checks.md).
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

UTILS = os.environ.get("DIFFUSERS_UTILS")


@pytest.mark.slow
@pytest.mark.skipif(not UTILS, reason="DIFFUSERS_UTILS (diffusers' utils/check_*.py) not given; offline runs have no copy")
def test_agreement_with_diffusers_checkers():
    import checks_agreement

    result = checks_agreement.run(Path(UTILS), seed=0, n=9)
    for phase in ("pristine", "after"):
        for key in ("copies", "dummies"):
            r = result[phase][key]
            assert r["only_theirs"] == [] and r["only_ours"] == [], (phase, key, r)
    assert result["after"]["copies"]["both"] > 0 and result["after"]["dummies"]["both"] > 0
