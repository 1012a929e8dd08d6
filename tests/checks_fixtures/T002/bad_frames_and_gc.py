# ruff: noqa
import gc  # <- T002
import sys
import traceback

s = sys
frame = s._getframe(0)  # <- T002
stack = traceback.extract_stack()  # <- T002
objects = gc.get_objects()  # <- T002
globs = (lambda: 0).__globals__  # <- T002
mods = sys.modules  # <- T002
sub = object.__subclasses__()  # <- T002
