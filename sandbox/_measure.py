"""Shim run inside the sandbox, between the walls and the real command.

Usage: python -I -S _measure.py REPORT_FD [WATCHED_DIR ...] -- CMD...

It runs CMD, then writes to the pipe REPORT_FD (inherited from the host, closed before CMD
starts, so the command never holds it): the peak RSS of CMD's tree, the signal that killed it,
and which WATCHED_DIRs (the sized in-memory file systems) are full. It imports only os and sys
and runs with -I -S: it is on the path of every sandboxed command, so it must start fast.
The exit status (or the killing signal) of CMD is passed on unchanged.
"""

import os
import sys

# Free space below this counts as full: a write that failed with ENOSPC leaves less than a page
# or two, while a file system with room left always has more.
FULL_BELOW_BYTES = 64 * 1024


def _full(paths: list[str]) -> list[str]:
    full = []
    for path in paths:
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize < FULL_BELOW_BYTES:
            full.append(path)
    return full


def main() -> None:
    args = sys.argv[1:]
    if "--" not in args or args.index("--") < 1 or args.index("--") == len(args) - 1:
        sys.exit("usage: _measure.py REPORT_FD [WATCHED_DIR ...] -- CMD...")
    sep = args.index("--")
    report_fd, watched, cmd = int(args[0]), args[1:sep], args[sep + 1:]
    os.set_inheritable(report_fd, False)  # exec below closes it in the command
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        except OSError as exc:
            os.write(2, f"sandbox: cannot run {cmd[0]}: {exc.strerror}\n".encode())
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    full = _full(watched)
    # One line per field; paths cannot hold a newline (they are ours, fixed by the runner).
    report = f"peak_rss_kb {usage.ru_maxrss}\nsignal {sig}\n" + "".join(f"full {p}\n" for p in full)
    try:
        os.write(report_fd, report.encode())
        os.close(report_fd)
    except OSError:
        pass
    if sig:
        import signal

        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
