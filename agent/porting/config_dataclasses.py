"""The dataclasses a factory passes to the model class, carried into the port.

config.json holds them as JSON (sandbox/config_values.py); the port's `__init__` rebuilds the
objects before the reference's code reads them, from the reference's own definitions, which the
inliner brings along because the code added here to the entry module names them.
"""

from __future__ import annotations

from sandbox.config_values import REBUILD_FUNCTION, rebuild_source

CLASSES_CONSTANT = "CONFIG_DATACLASSES"


def entry_addition(config_dataclasses: dict) -> str:
    """Code appended to the entry module before inlining: the rebuild function and the classes it
    may build (imported first when the entry module does not name them itself)."""
    imports = "".join(f"from {config_dataclasses['classes'][n]} import {n}\n" for n in config_dataclasses["not_in_entry_module"])
    table = ", ".join(f"{n!r}: {n}" for n in sorted(config_dataclasses["classes"]))
    return f"\n\n{imports}{rebuild_source}\n\n{CLASSES_CONSTANT} = {{{table}}}  # what config.json may name\n"


def roots() -> tuple[str, ...]:
    return (REBUILD_FUNCTION, CLASSES_CONSTANT)


def init_lines(arguments: list[str]) -> list[str]:
    """The first lines of the port's `__init__`: each argument that holds dataclasses, rebuilt."""
    return [f"{a} = {REBUILD_FUNCTION}({a}, {CLASSES_CONSTANT})  # config.json holds these dataclasses as dicts\n" for a in arguments]
