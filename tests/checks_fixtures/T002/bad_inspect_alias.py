# ruff: noqa
import inspect as _i


def forward(x):
    caller = _i.stack()[1]  # <- T002
    return _i.currentframe()  # <- T002
