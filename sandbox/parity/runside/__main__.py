"""python -m sandbox.parity.runside reference|candidate|mapping SPEC WORK --seeds 0,123 [--device] [--dtype]

One side of a parity check; runs inside the sandbox, writes its files into WORK. Exit 0 when
the side ran, 2 when it could not (the reason on the last line of stderr). It decides nothing.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import torch

from sandbox.parity.errors import ParityError
from sandbox.parity.presets import DTYPES

PHASES = ("reference", "candidate", "mapping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.parity.runside")
    parser.add_argument("phase", choices=PHASES)
    parser.add_argument("spec")
    parser.add_argument("work")
    parser.add_argument("--seeds", required=True, help="comma-separated seeds, one input set each")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    try:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise ParityError("--device cuda requested but no CUDA device is visible")
        device, dtype = torch.device(args.device), getattr(torch, args.dtype)
        if args.phase == "reference":
            from sandbox.parity.runside.reference import run_reference as run
        elif args.phase == "candidate":
            from sandbox.parity.runside.candidate import run_candidate as run
        else:
            from sandbox.parity.runside.mapping import run_mapping as run
        run(args.spec, Path(args.work), seeds, device, dtype)
    except ParityError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # untrusted models fail in any way; say how, in one line
        traceback.print_exc()
        print(f"{args.phase} side failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
