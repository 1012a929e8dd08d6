"""The dynamic compliance suite: runtime checks of the diffusers model contract on a port.

Each check is one module with one function `check(port) -> CheckResult`; `registry.CHECKS` lists
them in the order they run. Everything here imports and runs the port, so it runs only inside
the sandbox (through `sandbox.jobs.compliance`). docs/compliance.md says what each check
proves and how it decides.
"""
