"""Errors the user sees as one line, with the exit code the CLI contracts promise."""

from __future__ import annotations


class IntegrateError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    Exit code 2 means "could not run"; 1 means the run ran but its claim (parity) failed.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ParityFailed(IntegrateError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=1)
