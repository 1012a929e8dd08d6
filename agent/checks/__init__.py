"""Convention checks: one rule per file under rules/, one registry of rule docs."""

from agent.checks.engine import check_paths, check_source
from agent.checks.registry import RULES, Finding, Rule

__all__ = ["RULES", "Finding", "Rule", "check_paths", "check_source"]
