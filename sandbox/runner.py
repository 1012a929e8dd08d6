"""The one door through which untrusted code runs.

Reference repos, LLM-written code and parity specs from PRs all execute here: no network, no
secrets in the environment, writes confined to the workspace, bounded time, memory, processes
and file sizes. bubblewrap provides the walls; without it we fall back to `unshare` plus resource
limits and say so in the result (``isolation == "reduced"``), never silently.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.cgroup import PidsCgroup

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Where our own `sandbox` package is mounted inside, so jobs can import it without the host tree.
INSIDE_LIB = "/opt/integrate/lib"

ENV_ALLOWLIST = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "CUBLAS_WORKSPACE_CONFIG",
    "DIFFUSERS_ATTN_BACKEND",
)
ENV_ALLOW_PREFIXES = ("LC_",)
# A second gate: even an allowlisted or caller-supplied name is dropped when it looks secret.
SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^KEY$|APIKEY|API_KEY|AUTH)|^(ANTHROPIC_|GITHUB_|GH_|HF_(?!HUB_OFFLINE$|HUB_DISABLE)|HUGGING_FACE_|AWS_|OPENAI_)",
    re.IGNORECASE,
)


@dataclass
class Limits:
    wall_s: float = 600.0
    memory_mb: int = 8192
    cpu_s: int = 1200
    processes: int = 256
    file_mb: int = 4096
    output_bytes: int = 64_000


@dataclass
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    reason: str  # exit | timeout | memory | killed | file-size | cpu
    isolation: str  # full | reduced
    isolation_notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reason == "exit" and self.returncode == 0

    def to_dict(self) -> dict:
        return asdict(self)

    def one_line_error(self) -> str:
        """The last meaningful line of stderr, for a user-facing message."""
        for line in reversed(self.stderr.strip().splitlines()):
            line = line.strip()
            if line and not line.startswith(("File ", "^", "~")):
                return line[:300]
        return f"stopped: {self.reason} (exit code {self.returncode})"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the inside: an allowlist of the host's, then `extra`, secrets removed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ENV_ALLOWLIST or k.startswith(ENV_ALLOW_PREFIXES)
    }
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(extra or {})
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"})
    return {k: v for k, v in env.items() if not SECRET_NAME.search(k)}


def bwrap_path() -> str | None:
    if os.environ.get("INTEGRATE_SANDBOX_BACKEND") == "unshare":
        return None
    return shutil.which("bwrap")


def _python_roots() -> list[str]:
    """Directories the interpreter and its packages live in, mounted read-only inside."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    exe = Path(sys.executable)
    roots.add(str(exe.parent))
    roots.add(str(exe.resolve().parent.parent))
    import site

    for p in [*site.getsitepackages(), *sys.path]:
        if p and p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p):
            roots.add(p)
    return sorted(r for r in roots if r and os.path.isdir(r))


def _nvidia_devices() -> list[str]:
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


def _bwrap_argv(
    bwrap: str, workspace: Path, private_tmp: Path, ro_paths: Sequence[Path], gpu: bool
) -> list[str]:
    argv = [
        bwrap,
        "--unshare-all",  # network, pid, ipc, uts, cgroup and user namespaces
        "--die-with-parent",
        "--new-session",
        "--uid", "65534",
        "--gid", "65534",
        "--hostname", "sandbox",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/home",
        "--dir", "/home/sandbox",
        # private /tmp first: binds below may live under the host's /tmp and must stay visible
        "--bind", str(private_tmp), "/tmp",
    ]
    for system_dir in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc/alternatives"):
        if os.path.islink(system_dir):  # merged-/usr systems: /lib -> usr/lib
            argv += ["--symlink", os.readlink(system_dir), system_dir]
        elif os.path.exists(system_dir):
            argv += ["--ro-bind", system_dir, system_dir]
    # Only what programs need from /etc: no shadow files, no host credentials.
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf", "ssl", "mime.types"):
        p = f"/etc/{name}"
        if os.path.exists(p):
            argv += ["--ro-bind", p, p]
    for root in _python_roots():
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", str(PACKAGE_ROOT / "sandbox"), f"{INSIDE_LIB}/sandbox"]
    for p in ro_paths:
        argv += ["--ro-bind", str(p), str(p)]
    argv += ["--bind", str(workspace), str(workspace), "--chdir", str(workspace)]
    if gpu:
        for dev in _nvidia_devices():
            argv += ["--dev-bind", dev, dev]
    return argv


def _unshare_argv() -> tuple[list[str], list[str]]:
    notes = [
        "bubblewrap (bwrap) not found: running with reduced isolation",
        "file system is NOT confined: untrusted code can read what this user can read",
    ]
    unshare = shutil.which("unshare")
    if unshare is None:
        notes.append("unshare not found: network is NOT isolated")
        return [], notes
    probe = subprocess.run([unshare, "--net", "--map-root-user", "--pid", "--fork", "--kill-child", "true"], capture_output=True)
    if probe.returncode != 0:
        notes.append("unshare could not create namespaces: network is NOT isolated")
        return [], notes
    notes.append("network and process namespaces from unshare; environment filtered; resource limits set")
    return [unshare, "--net", "--map-root-user", "--pid", "--fork", "--kill-child", "--mount-proc"], notes


def _user_process_count() -> int:
    """Processes the current user already runs: RLIMIT_NPROC counts them too."""
    uid, count = os.getuid(), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def _child_setup(limits: Limits, nproc: int, cgroup: PidsCgroup | None) -> None:
    """Runs in the child between fork and exec."""
    if cgroup is not None:
        cgroup.join()
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _bounded(path: Path, limit: int) -> str:
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= limit:
            data = fh.read()
        else:
            head = fh.read(limit // 2)
            fh.seek(size - limit // 2)
            tail = fh.read()
            data = head + f"\n[... {size - limit} bytes cut ...]\n".encode() + tail
    return data.decode("utf-8", errors="replace")


def _reason(status: int, inner_signal: int | None, timed_out: bool, stderr: str) -> str:
    if timed_out:
        return "timeout"
    if inner_signal or os.WIFSIGNALED(status):
        sig = inner_signal or os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "cpu"
        if sig == signal.SIGXFSZ:
            return "file-size"
        return "killed"
    code = os.WEXITSTATUS(status)
    if code == 128 + signal.SIGXFSZ or "File too large" in stderr:
        return "file-size"
    if code == 128 + signal.SIGXCPU:
        return "cpu"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr or "std::bad_alloc" in stderr:
        return "memory"
    if code == 128 + signal.SIGKILL:
        return "killed"
    return "exit"


def run(
    cmd: Sequence[str],
    workspace: str | os.PathLike,
    *,
    limits: Limits | None = None,
    ro_paths: Sequence[str | os.PathLike] = (),
    env: Mapping[str, str] | None = None,
    gpu: bool | None = None,
    poll: Callable[[], None] | None = None,
) -> SandboxResult:
    """Run `cmd` contained, with `workspace` as its only writable directory (and cwd).

    `ro_paths` are host paths made visible read-only at the same place. `env` adds variables
    (secret-looking names are still dropped). `gpu=None` exposes NVIDIA devices when present.
    `poll` is called about every 0.1 s while the command runs (to show progress).
    """
    limits = limits or Limits()
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    ro = [Path(p).resolve() for p in ro_paths if Path(p).exists()]
    gpu = bool(_nvidia_devices()) if gpu is None else gpu

    with tempfile.TemporaryDirectory(prefix="integrate-sbx-") as scratch_dir:
        scratch = Path(scratch_dir)
        private_tmp = scratch / "tmp"
        private_tmp.mkdir()
        out_path, err_path = scratch / "stdout", scratch / "stderr"
        inside_env = clean_env(env)
        bwrap = bwrap_path()
        if bwrap:
            prefix = _bwrap_argv(bwrap, workspace, private_tmp, ro, gpu)
            isolation, notes = "full", ["bubblewrap: no network, read-only system, private /tmp and HOME"]
            inside_env.update({"HOME": "/home/sandbox", "TMPDIR": "/tmp"})
            inside_env["PYTHONPATH"] = os.pathsep.join([INSIDE_LIB, *filter(None, [inside_env.get("PYTHONPATH")])])
        else:
            prefix, notes = _unshare_argv()
            isolation = "reduced"
            home = scratch / "home"
            home.mkdir()
            inside_env.update({"HOME": str(home), "TMPDIR": str(private_tmp)})
            inside_env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [inside_env.get("PYTHONPATH")])])
        # Python's "safe path": the cwd (the workspace) is not put first on sys.path implicitly.
        inside_env.setdefault("PYTHONSAFEPATH", "1")

        # Process limit: a pids cgroup where we may create one; RLIMIT_NPROC binds non-root users.
        cgroup = PidsCgroup.create(limits.processes + 8)
        nproc = limits.processes + (_user_process_count() if os.getuid() != 0 else 0)
        if cgroup is not None:
            notes.append(f"process limit: pids cgroup ({limits.processes})")
        elif os.getuid() != 0:
            notes.append(f"process limit: RLIMIT_NPROC ({limits.processes} above the user's current processes)")
        else:
            notes.append("process limit NOT enforced: running as root without a writable pids cgroup")
        report_inside = "/tmp/.integrate-measure.json" if bwrap else str(private_tmp / ".integrate-measure.json")
        shim = [sys.executable, "-m", "sandbox._measure", report_inside, "--"]
        start = time.monotonic()
        try:
            status, peak_kb, timed_out = _launch(
                [*prefix, *shim, *cmd], workspace, inside_env, out_path, err_path, limits, nproc, cgroup, poll
            )
        finally:
            if cgroup is not None:
                cgroup.remove()  # whatever is left, daemons included, dies here
        wall = time.monotonic() - start
        stdout = _bounded(out_path, limits.output_bytes)
        stderr = _bounded(err_path, limits.output_bytes)
        measured = private_tmp / ".integrate-measure.json"
        inner_signal = None
        if measured.exists():
            try:
                report = json.loads(measured.read_text())
                peak_kb, inner_signal = max(peak_kb, report["peak_rss_kb"]), report.get("signal")
            except (ValueError, KeyError):
                pass
        reason = _reason(status, inner_signal, timed_out, stderr)
        return SandboxResult(
            returncode=os.waitstatus_to_exitcode(status),
            stdout=stdout,
            stderr=stderr,
            wall_s=round(wall, 3),
            peak_rss_mb=round(peak_kb / 1024, 1),
            reason=reason,
            isolation=isolation,
            isolation_notes=notes,
        )


def _launch(argv, workspace, env, out_path, err_path, limits, nproc, cgroup, poll=None) -> tuple[int, int, bool]:
    """Start the command, wait up to the wall limit, kill everything on timeout.

    Returns (wait status, peak RSS in KB as seen by wait4, timed out).
    """
    with out_path.open("wb") as out_fh, err_path.open("wb") as err_fh:
        proc = subprocess.Popen(
            argv,
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out_fh,
            stderr=err_fh,
            start_new_session=True,
            preexec_fn=lambda: _child_setup(limits, nproc, cgroup),
        )
        status, peak_kb = _wait(proc.pid, limits.wall_s, poll)
        timed_out = status is None
        if timed_out:
            _kill_group(proc.pid)
            if cgroup is not None:
                cgroup.kill_all()
            _, status, usage = os.wait4(proc.pid, 0)
            peak_kb = usage.ru_maxrss
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        _kill_group(proc.pid)  # anything left in the group (fallback path) goes too
    return status, peak_kb, timed_out


def _wait(pid: int, wall_s: float, poll: Callable[[], None] | None = None) -> tuple[int | None, int]:
    deadline = time.monotonic() + wall_s
    delay = 0.005
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return status, usage.ru_maxrss
        if time.monotonic() >= deadline:
            return None, 0
        if poll is not None:
            poll()
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
