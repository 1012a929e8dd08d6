"""Everything that executes untrusted code: the isolated runner and the jobs it runs."""

from sandbox.runner import Limits, SandboxResult, run

__all__ = ["Limits", "SandboxResult", "run"]
