"""Every rule against its fixtures (tests/checks_fixtures/<ID>/): `bad_*.py` files give a finding
of the rule on exactly the lines marked `# <- ID`, `good_*.py` files give none. The tamper rules'
fixtures include the hidden forms (aliases, `from sys import _getframe`, `getattr(sys, ...)`,
variables holding a module)."""

from pathlib import Path

import pytest

from agent.checks import RULES, check_source
from agent.checks.registry import resolve_ids

FIXTURES = Path(__file__).resolve().parent / "checks_fixtures"
CASES = sorted((d.name, f) for d in FIXTURES.iterdir() if d.is_dir() for f in sorted(d.glob("*.py")))


def _marked(source: str, rule: str) -> set[int]:
    return {i for i, line in enumerate(source.splitlines(), 1) if f"# <- {rule}" in line}


@pytest.mark.parametrize(("rule", "path"), CASES, ids=[f"{r}/{p.name}" for r, p in CASES])
def test_fixture(rule, path):
    source = path.read_text()
    lines = {f.line for f in check_source(path, source, [rule]) if f.rule == rule}
    if path.name.startswith("bad"):
        expected = _marked(source, rule)
        assert expected, f"{path.name} marks no line"
        assert lines == expected, f"{rule} found lines {sorted(lines)}, fixture marks {sorted(expected)}"
    else:
        assert not lines, f"{rule} fired on {path.name} lines {sorted(lines)}"


def test_every_file_rule_has_fixtures_both_ways():
    resolve_ids([])
    repository = {"R001", "R002", "R003", "R004", "R005"}  # need a package tree: test_checks_repository.py
    for rule in sorted(set(RULES) - repository):
        names = [p.name for r, p in CASES if r == rule]
        assert any(n.startswith("bad") for n in names) and any(n.startswith("good") for n in names), rule


def test_tamper_rules_block_a_pass_and_others_do_not():
    resolve_ids([])
    blocking = {r.id for r in RULES.values() if r.blocks_pass}
    assert blocking == {f"T00{i}" for i in range(1, 9)}
    assert all(not RULES[r].default for r in blocking)  # port-only: run by --port and check_port()
