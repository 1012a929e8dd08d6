# ruff: noqa
import importlib  # <- T003

exec("x = 1")  # <- T003
run = eval  # <- T003
value = run("1 + 1")  # <- T003
code = compile("1", "<s>", "eval")  # <- T003
