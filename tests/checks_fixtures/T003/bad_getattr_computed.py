# ruff: noqa
import builtins

name = "ex" + "ec"
fn = getattr(builtins, name)  # <- T003
