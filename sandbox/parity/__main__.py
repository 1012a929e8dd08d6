"""python -m sandbox.parity SPEC.py [--device] [--dtype] [--seed] [--json OUT]

Exit 0 passed, 1 not passed, 2 could not run. This is the program that runs inside the
sandbox; `integrate parity` wraps it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback

from sandbox.parity.engine import ParityError, run_parity


def jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.parity")
    parser.add_argument("spec")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out")
    parser.add_argument("--plot", help="write a PNG of max abs diff per aligned layer here")
    args = parser.parse_args(argv)
    try:
        report = run_parity(args.spec, device=args.device, dtype=args.dtype, seed=args.seed)
    except ParityError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # untrusted models fail in any way; say how, in one line
        traceback.print_exc()
        print(f"{exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        from sandbox.parity.plot import write_layer_plot

        write_layer_plot(report["layers"], report["tolerance"]["max_abs"], args.plot)
        report["plot"] = args.plot
    report = jsonable(report)
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(report, fh, indent=2)
    verdict = "passed" if report["passed"] else "NOT passed"
    print(f"parity {verdict}: max abs {report['max_abs_diff']}, mean abs {report['mean_abs_diff']}, cosine {report['cosine']}")
    for problem in report["problems"]:
        print(f"  - {problem}")
    if report["first_divergence"]:
        fd = report["first_divergence"]
        print(f"  first divergence: {fd['reference_module']} -> {fd['candidate_module']} (max abs {fd['max_abs_diff']})")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
