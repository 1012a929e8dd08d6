"""How long search_code takes on patterns that backtrack catastrophically in Python's `re`.

    python benchmarks/search_code_redos.py [--chars 1000000] [--re-limit 30]

For each pattern, the real search_code tool (RE2) over one line of `--chars` letters, and
Python's `re` over lines of growing length, each in a child process stopped after `--re-limit`
seconds, which shows the exponential growth the tool no longer has. Prints one row per run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATTERNS = ["(a+)+!", r"(\w+\s?)*$", "(a|aa)+!", "(a|a?)+!"]
RE_LENGTHS = [16, 20, 22, 24, 26, 28]


def time_re(pattern: str, n: int, limit: float) -> str:
    code = f"import re; re.search({pattern!r}, 's = ' + repr('a' * {n}))"
    start = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", code], timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        return f"> {limit:g} s (stopped)"
    return f"{time.perf_counter() - start:.3f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--re-limit", type=float, default=30.0)
    args = parser.parse_args()

    from agent.llm.tools import Workspace, call_tool, file_tools

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "long.py").write_text("s = " + repr("a" * args.chars) + "\n")
        tools = file_tools(Workspace(tmp), {})
        print(f"search_code (RE2), one line of {args.chars:,} letters:")
        for pattern in PATTERNS:
            start = time.perf_counter()
            text, is_error = call_tool(tools, "search_code", {"pattern": pattern, "path": "long.py"})
            print(f"  {pattern:<14} {time.perf_counter() - start:8.3f} s   {text.splitlines()[0][:40]}{' (error)' if is_error else ''}")
    print(f"Python re, one line of n letters (child process, stopped after {args.re_limit:g} s):")
    for pattern in PATTERNS:
        row = []
        for n in RE_LENGTHS:
            took = time_re(pattern, n, args.re_limit)
            row.append(f"n={n}: {took}")
            if took.startswith(">"):
                break
        print(f"  {pattern:<14} " + "; ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
