# ruff: noqa
import sys

from diffusers.utils import _LazyModule

_import_structure = {"transformer_x": ["XModel"]}
sys.modules[__name__] = _LazyModule(__name__, globals()["__file__"], _import_structure, module_spec=__spec__)
