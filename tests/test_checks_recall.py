"""The planted corpus (tests/planted): every plant gives the outcome its entry records, so a rule
change that loses a caught bug, or starts catching a recorded miss, is seen. The recall figures
themselves come from benchmarks/checks_recall.py."""

import pytest
from planted.harness import apply_edits, run_plants
from planted.plants import PLANTS

BY_ID = {p.id: p for p in PLANTS}


def test_plant_ids_are_unique_and_cover_every_family():
    assert len(BY_ID) == len(PLANTS) >= 50
    patterns = {p.pattern for p in PLANTS}
    for family in ("batch-expansion", "ignored-argument", "mask-dropped", "dtype-device", "output-contract",
                   "validation", "copy-divergence", "registration", "tampering"):
        assert family in patterns
    assert sum(p.subtle for p in PLANTS) >= 25


@pytest.fixture(scope="module")
def outcomes():
    return {o.plant.id: o for o in run_plants()}


@pytest.mark.parametrize("plant_id", sorted(BY_ID))
def test_plant(plant_id, outcomes):
    o = outcomes[plant_id]
    if o.caught is None:
        pytest.skip(o.note)
    expect_caught = o.plant.expect == "caught"
    assert o.caught == expect_caught, (
        f"{plant_id}: {'missed' if expect_caught else 'now caught'} ({o.plant.rule}); new findings: {o.new}"
    )


def test_plants_apply_to_their_base_once():
    from planted.harness import BASE

    for p in PLANTS:
        if not p.base.startswith("installed:"):
            apply_edits((BASE / f"{p.base}.txt").read_text(), p.edits, p.id)
