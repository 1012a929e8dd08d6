"""Import the reference model, build it from its config, and describe it (runs sandboxed).

    python -m sandbox.jobs.probe_reference ROOT MODULE CLASS KWARGS_JSON OUT_JSON
"""

import inspect
import json
import sys
import traceback

from sandbox.loading import load_class, read_kwargs


def main() -> int:
    root, module, cls_name, kwargs_file, out = sys.argv[1:6]
    try:
        cls = load_class(root, module, cls_name)
    except Exception as exc:  # the reference is untrusted: any failure is reported, not raised
        _write(out, {"ok": False, "stage": "import", "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=3)})
        return 0
    try:
        model = cls(**read_kwargs(kwargs_file))
    except Exception as exc:
        _write(out, {"ok": False, "stage": "instantiate", "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=3)})
        return 0
    state = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in model.state_dict().items()}
    forward = inspect.signature(model.forward)
    _write(out, {
        "ok": True,
        "parameters": sum(p.numel() for p in model.parameters()),
        "state_dict": state,
        "forward": [
            {"name": p.name, "required": p.default is inspect.Parameter.empty, "kind": p.kind.name}
            for p in forward.parameters.values()
        ],
        "submodules": sorted({type(m).__name__ for m in model.modules()}),
    })
    return 0


def _write(path, payload):
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=2)


if __name__ == "__main__":
    sys.exit(main())
