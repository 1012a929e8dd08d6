"""Convention checks: one rule per file under rules/, one registry of rule docs.

For a port's verification: `check_port(paths)` runs every rule including the port-only ones,
and `blocking(findings)` returns the findings that must fail the run (tampering, a model file
that does not parse).
"""

from agent.checks.engine import check_paths, check_port, check_source
from agent.checks.registry import RULES, Finding, Rule, blocking

__all__ = ["RULES", "Finding", "Rule", "blocking", "check_paths", "check_port", "check_source"]
