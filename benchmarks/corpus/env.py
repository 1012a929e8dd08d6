"""Create the corpus environment: a virtualenv that sees this interpreter's packages (the project
and its dependencies) and adds what the corpus models import (requirements.txt beside this file).

    python benchmarks/corpus/env.py [--venv DIR]     (with the project's environment active)

Then run the corpus with its interpreter: DIR/bin/python benchmarks/real_models.py
(default DIR: benchmarks/corpus/.cache/venv).
"""

from __future__ import annotations

import argparse
import importlib.util
import site
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=HERE / ".cache" / "venv")
    args = parser.parse_args()
    if importlib.util.find_spec("agent") is None or importlib.util.find_spec("diffusers") is None:
        print("error: run this with the interpreter that has integrate installed (its packages are shared)", file=sys.stderr)
        return 2
    target = args.venv.resolve()
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    inner = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True, check=True)
    # Packages of the interpreter running this script stay visible, after the corpus's own.
    outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in outer)
    (Path(inner.stdout.strip()) / "integrate-outer.pth").write_text(lines)
    subprocess.run([python, "-m", "pip", "install", "-q", "-r", str(HERE / "requirements.txt")], check=True)
    print(f"corpus environment ready: {python}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
