"""Shim run inside the sandbox: runs the real command and records its tree's peak RSS.

Usage: python -m sandbox._measure REPORT_FILE -- CMD...
The exit status (or the killing signal) of CMD is passed on unchanged.
"""

import json
import os
import signal
import sys


def main() -> None:
    report, sep, *cmd = sys.argv[1:]
    if sep != "--" or not cmd:
        sys.exit("usage: python -m sandbox._measure REPORT -- CMD...")
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            print(f"sandbox: cannot run {cmd[0]}: {exc.strerror}", file=sys.stderr)
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w") as fh:
        json.dump({"peak_rss_kb": usage.ru_maxrss, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}, fh)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
