"""The inliner follows every form of import real repos use and keeps what the port needs,
with names resolved by scope; what it cannot inline faithfully stops it with file:line."""

import importlib
import sys
import textwrap

import pytest

from agent.porting.inline import InlineError, inline_local_imports


def write_tree(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return sorted(files)


def import_fresh(root, module):
    """Import the test's own package (written by this test) for the expected values."""
    sys.path.insert(0, str(root))
    try:
        for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
            del sys.modules[name]
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(root))


PACKAGE = {
    "pkg/__init__.py": "",
    "pkg/flags.py": """
        SCALE = 3.0
        UNUSED = 1

        def act(x):
            return x * SCALE
    """,
    "pkg/layers/__init__.py": """
        from .attn import Mixer
        from .norms import *
    """,
    "pkg/layers/attn.py": """
        import torch
        from torch import nn

        def exists(v):
            return v is not None

        class Mixer(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.lin = nn.Linear(dim, dim)

            def forward(self, x, bias=None):
                return self.lin(x) + (bias if exists(bias) else 0)
    """,
    "pkg/layers/norms.py": """
        __all__ = ["Norm"]
        import torch
        from torch import nn

        class Norm(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.ln = nn.LayerNorm(dim)

            def forward(self, x):
                return self.ln(x)
    """,
    "pkg/util.py": """
        import warnings

        warnings.filterwarnings("ignore")

        def exists(v):
            return v is not None

        def halve(x):
            return x / 2
    """,
    "pkg/helpers.py": """
        def twice(x):
            return 2 * x
    """,
    "pkg/sub/__init__.py": "",
    "pkg/sub/model.py": """
        import torch
        from torch import nn
        from .. import flags
        from .. import layers as L
        from ..layers import Norm
        import pkg.util as U

        def exists(v):
            return v is not None

        class Net(nn.Module):
            def __init__(self, dim=8):
                super().__init__()
                self.mix = L.Mixer(dim)
                self.norm = Norm(dim)

            def forward(self, x):
                from ..helpers import twice
                y = flags.act(self.norm(self.mix(x)))
                return U.halve(twice(y)) if exists(y) else y

        def train():
            raise SystemExit("not part of the model")
    """,
}


def test_module_imports_relative_parents_star_and_function_level_imports_are_inlined(tmp_path):
    files = write_tree(tmp_path, PACKAGE)
    r = inline_local_imports(tmp_path, "pkg/sub/model.py", files, top="Net")
    code = "\n".join(line for line in r.code.splitlines() if not line.startswith("# ---- from "))
    assert "pkg" not in code  # nothing imports the package any more
    assert "flags." not in code and "L.Mixer" not in code and "U.halve" not in code
    assert "UNUSED" not in code  # only what the model uses
    assert "train" in r.pruned
    inlined = {m["module"]: m for m in r.inlined}
    assert set(inlined) == {"pkg/flags.py", "pkg/layers/attn.py", "pkg/layers/norms.py", "pkg/util.py", "pkg/helpers.py"}
    assert inlined["pkg/flags.py"]["names"] == ["SCALE", "act"]
    assert "from .. import flags" in inlined["pkg/flags.py"]["via"]
    assert r.renamed == []  # the three `exists` are identical and kept once
    assert r.dropped_statements == [{"file": "pkg/util.py", "line": 4, "code": 'warnings.filterwarnings("ignore")'}]
    assert code.count("def exists(") == 1

    import torch

    ns = {}
    exec(compile(code, "port.py", "exec"), ns)
    reference = import_fresh(tmp_path, "pkg.sub.model").Net()
    port = ns["Net"]()
    port.load_state_dict(reference.state_dict())
    x = torch.randn(2, 8)
    assert torch.equal(reference(x), port(x))


def test_collision_rename_reaches_calls_inside_the_helpers_own_functions(tmp_path):
    files = write_tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/ops.py": """
            def scale(x, n=2):
                # calls itself by the colliding name
                return x if n == 0 else 3 * scale(x, n - 1)

            def apply(x):
                return scale(x) + 1

            class Op:
                def run(self, x):
                    return scale(x, 1)
        """,
        "pkg/model.py": """
            import torch
            from torch import nn
            from .ops import apply, Op

            def scale(x):
                return x - 100

            class Net(nn.Module):
                def forward(self, x):
                    return apply(x) + Op().run(x) + scale(x)
        """,
    })
    r = inline_local_imports(tmp_path, "pkg/model.py", files, top="Net")
    assert r.renamed == [{"module": "pkg.ops", "from": "scale", "to": "scale_ops"}]
    ns = {}
    exec(compile(r.code, "port.py", "exec"), ns)
    reference = import_fresh(tmp_path, "pkg.model").Net()
    import torch

    x = torch.arange(4.0)
    assert torch.equal(ns["Net"]()(x), reference(x))
    assert "return x if n == 0 else 3 * scale_ops(x, n - 1)" in r.code


@pytest.mark.parametrize("files, where, words", [
    ({"pkg/model.py": "from .layers import Block\nimport torch\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return Block(x)\n"},
     "pkg/model.py:1", ["pkg.layers", "not in the reference code"]),
    ({"pkg/layers.py": "X = 1\n", "pkg/model.py": "import torch\nfrom .layers import Block\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return Block(x)\n"},
     "pkg/model.py:2", ["does not define 'Block'"]),
    ({"pkg/flags.py": "X = 1\n", "pkg/model.py": "import torch\nfrom . import flags\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n        return getattr(flags, 'X') * x\n"},
     "pkg/model.py:6", ["used as an object"]),
])
def test_what_cannot_be_inlined_stops_with_file_and_line(tmp_path, files, where, words):
    names = write_tree(tmp_path, {"pkg/__init__.py": "", **files})
    with pytest.raises(InlineError) as info:
        inline_local_imports(tmp_path, "pkg/model.py", names, top="Net")
    assert str(info.value).startswith(where + ":"), str(info.value)
    for w in words:
        assert w in str(info.value)
