"""The one door through which untrusted code runs.

Reference repos, LLM-written code and parity specs from PRs all execute here: no network, no
secrets in the environment, writes confined to the workspace, bounded time, memory, processes
and file sizes; the in-memory file systems it may write (/tmp, HOME, /dev/shm) are sized and
counted in its memory limit. bubblewrap provides the walls. Without it the only fallback is
`unshare` plus resource limits, which leaves the file system and host unix sockets open: it is
refused unless the caller allows it explicitly (`--allow-reduced-isolation`,
`allow_reduced_isolation()`), and then every result says what is not confined.
"""

from __future__ import annotations

import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
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


# The in-memory file systems inside bubblewrap, and each one's share of `Limits.tmpfs_mb`.
HOME_INSIDE = "/home/sandbox"
TMPFS_SHARES = {"/tmp": 2, HOME_INSIDE: 1, "/dev/shm": 1}


class IsolationRefused(RuntimeError):
    """bubblewrap cannot be used and reduced isolation was not allowed: nothing was run."""


_reduced_isolation_allowed = False


def allow_reduced_isolation(allowed: bool = True) -> None:
    """Let every later `run` in this process fall back to reduced isolation when bubblewrap is
    missing (what `integrate --allow-reduced-isolation` sets). Each result still says so."""
    global _reduced_isolation_allowed
    _reduced_isolation_allowed = allowed


@dataclass
class Limits:
    wall_s: float = 600.0
    memory_mb: int = 8192  # each process's address space plus the in-memory file systems
    cpu_s: int = 1200
    processes: int = 256
    file_mb: int = 4096
    output_bytes: int = 64_000
    tmpfs_mb: int | None = None  # the part of memory_mb for /tmp, HOME and /dev/shm together (default: a quarter)

    def tmpfs_sizes_mb(self) -> dict[str, int]:
        """Size of each in-memory file system: `tmpfs_mb` split by TMPFS_SHARES."""
        budget = self.memory_mb // 4 if self.tmpfs_mb is None else self.tmpfs_mb
        if not len(TMPFS_SHARES) <= budget < self.memory_mb:
            raise ValueError(f"tmpfs_mb must be at least {len(TMPFS_SHARES)} and below memory_mb ({self.memory_mb}), not {budget}")
        total = sum(TMPFS_SHARES.values())
        sizes = {path: max(1, budget * share // total) for path, share in TMPFS_SHARES.items()}
        sizes["/tmp"] += budget - sum(sizes.values())  # rounding remainder
        return sizes

    def address_space_mb(self) -> int:
        """What is left of memory_mb for each process once the in-memory file systems are full."""
        return self.memory_mb - sum(self.tmpfs_sizes_mb().values())


@dataclass
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float
    reason: str  # exit | timeout | memory | killed | file-size | cpu | tmpfs-full
    isolation: str  # full | reduced
    isolation_notes: list[str] = field(default_factory=list)
    detail: str = ""  # one line on why the sandbox stopped it, when a limit did

    @property
    def ok(self) -> bool:
        return self.reason == "exit" and self.returncode == 0

    def to_dict(self) -> dict:
        return asdict(self)

    def one_line_error(self) -> str:
        """The sandbox's own reason when a limit stopped the command, else the last meaningful
        line of stderr, for a user-facing message."""
        if self.detail:
            return self.detail
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


def _why_no_bwrap() -> str:
    if os.environ.get("INTEGRATE_SANDBOX_BACKEND") == "unshare":
        return "INTEGRATE_SANDBOX_BACKEND=unshare asks for the fallback instead of bubblewrap"
    return "bubblewrap (bwrap) is not installed"


@cache
def _bwrap_version(bwrap: str) -> tuple[int, int]:
    """(major, minor) of this bubblewrap; (0, 0) when it does not say. --size (sized tmpfs)
    came in 0.7.0, --disable-userns in 0.8.0."""
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    found = re.search(r"(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _sizes_tmpfs(bwrap: str) -> bool:
    return _bwrap_version(bwrap) >= (0, 7)


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
    bwrap: str, workspace: Path, ro_paths: Sequence[Path], gpu: bool, tmpfs_mb: Mapping[str, int]
) -> list[str]:
    argv = [
        bwrap,
        "--unshare-all",  # network, pid, ipc, uts and cgroup namespaces
        "--unshare-user",  # uid 65534 inside, no capabilities
        "--die-with-parent",
        "--new-session",
        "--uid", "65534",
        "--gid", "65534",
        "--hostname", "sandbox",
    ]
    if _bwrap_version(bwrap) >= (0, 8):
        # No nested user namespace, so no way back to capabilities (to mount a cgroup file
        # system and raise its own pids.max, say).
        argv.append("--disable-userns")
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # The only writable places besides the workspace: sized tmpfs mounts, counted in memory_mb.
    # Mounted before the binds below, which may live under the host's /tmp and must stay visible.
    for path, mb in tmpfs_mb.items():
        argv += [*(["--size", str(mb * 1024 * 1024)] if _sizes_tmpfs(bwrap) else []), "--tmpfs", path]
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
    argv += ["--bind", str(workspace), str(workspace)]
    if gpu:
        for dev in _nvidia_devices():
            argv += ["--dev-bind", dev, dev]
    # bubblewrap's own tmpfs under / and /dev would otherwise take unbounded writes.
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", str(workspace)]
    return argv


@cache
def _unshare_argv() -> tuple[list[str], str | None]:
    """The fallback's namespaces, or why there are none."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return [], "unshare is not installed"
    argv = [unshare, "--net", "--ipc", "--map-root-user", "--pid", "--fork", "--kill-child"]
    if subprocess.run([*argv, "true"], capture_output=True).returncode != 0:
        return [], "unshare could not create namespaces"
    return [*argv, "--mount-proc"], None


def _reduced_notes(why_no_bwrap: str, no_namespaces: str | None, pids_cgroup: bool, limits: Limits) -> list[str]:
    """Exactly what the fallback leaves open (tests/test_sandbox_fallback.py checks each line)."""
    uid = os.getuid()
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        user = str(uid)
    notes = [
        f"reduced isolation, allowed explicitly (--allow-reduced-isolation): {why_no_bwrap}",
        f"NOT confined: the file system: the command can read and write every file this user ({user}, uid {uid}) can, not only the workspace",
        "NOT confined: host unix sockets that have a path (Docker, X11, D-Bus, ssh-agent ...): the command can connect to them",
        "NOT confined: files as memory: HOME and TMPDIR are a host folder on disk and /dev/shm is the host's; no file counts in the memory limit",
    ]
    if no_namespaces:
        notes.append(f"NOT confined: the network, host processes and System V IPC: {no_namespaces}")
    if uid == 0 and pids_cgroup:
        notes.append("NOT confined: the process limit: the tool runs as root, so the command can raise pids.max of its cgroup or leave the cgroup")
    elif uid == 0:
        notes.append("NOT confined: the process count: the tool runs as root and no pids cgroup could be created")
    else:
        notes.append(f"process limit: RLIMIT_NPROC ({limits.processes} above the user's current processes), which the command cannot raise")
    if not no_namespaces:
        notes.append("confined: the network (its own empty namespace: no host loopback service, no abstract unix socket, no DNS), "
                     "host processes (its own PID namespace), System V IPC (its own namespace)")
    notes.append(f"confined: the environment (secrets removed); limits on wall time, CPU time, address space ({limits.memory_mb} MB per process) and file size")
    return notes


def _bwrap_notes(bwrap: str, limits: Limits, pids_cgroup: bool) -> list[str]:
    sizes = limits.tmpfs_sizes_mb()
    notes = ["bubblewrap: no network, read-only root and system, the workspace is the only writable host folder"]
    version = ".".join(map(str, _bwrap_version(bwrap)))
    if _sizes_tmpfs(bwrap):
        notes.append(f"in memory and counted in the {limits.memory_mb} MB memory limit: /tmp {sizes['/tmp']} MB, "
                     f"HOME {sizes[HOME_INSIDE]} MB, /dev/shm {sizes['/dev/shm']} MB; {limits.address_space_mb()} MB address space per process")
    else:
        notes.append(f"NOT bound: /tmp, HOME and /dev/shm are tmpfs without a size (bubblewrap {version} is older than 0.7, "
                     "which added --size): what the command writes there is not counted in the memory limit")
    if _bwrap_version(bwrap) < (0, 8):
        notes.append(f"nested user namespaces are possible (bubblewrap {version} is older than 0.8, which added --disable-userns)")
    if pids_cgroup:
        notes.append(f"process limit: pids cgroup ({limits.processes}), out of the command's reach")
    elif os.getuid() != 0:
        notes.append(f"process limit: RLIMIT_NPROC ({limits.processes} above the user's current processes)")
    else:
        notes.append("process limit NOT enforced: running as root without a writable pids cgroup")
    return notes


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


def _child_setup(limits: Limits, address_space_mb: int, nproc: int, cgroup: PidsCgroup | None) -> None:
    """Runs in the child between fork and exec."""
    if cgroup is not None:
        cgroup.join()
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space_mb * mb, address_space_mb * mb))
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


def _reason(status: int, inner_signal: int | None, timed_out: bool, stderr: str, full: Sequence[str] = ()) -> str:
    if timed_out:
        return "timeout"
    if inner_signal or os.WIFSIGNALED(status):
        sig = inner_signal or os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "cpu"
        if sig == signal.SIGXFSZ:
            return "file-size"
        return "tmpfs-full" if full else "killed"
    code = os.WEXITSTATUS(status)
    if code == 128 + signal.SIGXFSZ or "File too large" in stderr:
        return "file-size"
    if code == 128 + signal.SIGXCPU:
        return "cpu"
    if full and code != 0:
        return "tmpfs-full"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr or "std::bad_alloc" in stderr:
        return "memory"
    if code == 128 + signal.SIGKILL:
        return "killed"
    return "exit"


def _detail(reason: str, sig: int | None, full: Sequence[str], limits: Limits, in_memory: bool) -> str:
    """One line on how a limit stopped the command ("" when none did)."""
    sizes = limits.tmpfs_sizes_mb()
    names = {HOME_INSIDE: f"HOME ({HOME_INSIDE})"}
    if reason == "tmpfs-full":
        places = " and ".join(f"{names.get(p, p)} ({sizes[p]} MB)" for p in full)
        return (f"{places} {'is' if len(full) == 1 else 'are'} full: the in-memory file systems are part of the "
                f"{limits.memory_mb} MB memory limit (raise Limits.tmpfs_mb, or write large files to the workspace)")
    if reason == "killed" and sig == signal.SIGBUS and in_memory:
        # Not measured full at the end (a cleanup may have emptied it): say what is likely, as likely.
        places = ", ".join(f"{names.get(p, p)} {mb} MB" for p, mb in sizes.items())
        return (f"killed by SIGBUS, the signal for a write through mmap that finds no room: likely a full in-memory "
                f"file system ({places}, part of the {limits.memory_mb} MB memory limit)")
    return ""


def run(
    cmd: Sequence[str],
    workspace: str | os.PathLike,
    *,
    limits: Limits | None = None,
    ro_paths: Sequence[str | os.PathLike] = (),
    env: Mapping[str, str] | None = None,
    gpu: bool | None = None,
    poll: Callable[[], None] | None = None,
    allow_reduced_isolation: bool | None = None,
) -> SandboxResult:
    """Run `cmd` contained, with `workspace` as its only writable host directory (and cwd).

    `ro_paths` are host paths made visible read-only at the same place. `env` adds variables
    (secret-looking names are still dropped). `gpu=None` exposes NVIDIA devices when present.
    `poll` is called about every 0.1 s while the command runs (to show progress).
    Without bubblewrap, raises IsolationRefused unless `allow_reduced_isolation` (default: the
    process-wide `allow_reduced_isolation()` setting) lets it run with reduced isolation.
    """
    limits = limits or Limits()
    tmpfs_mb = limits.tmpfs_sizes_mb()  # a bad budget fails here, before anything runs
    bwrap = bwrap_path()
    if bwrap is None and not (_reduced_isolation_allowed if allow_reduced_isolation is None else allow_reduced_isolation):
        raise IsolationRefused(
            f"{_why_no_bwrap()}: untrusted code would run with reduced isolation (it could write any file "
            "this user can and connect to host unix sockets); install bubblewrap, or pass "
            "--allow-reduced-isolation to accept that"
        )
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    ro = [Path(p).resolve() for p in ro_paths if Path(p).exists()]
    gpu = bool(_nvidia_devices()) if gpu is None else gpu

    with tempfile.TemporaryDirectory(prefix="integrate-sbx-") as scratch_dir:
        scratch = Path(scratch_dir)
        out_path, err_path = scratch / "stdout", scratch / "stderr"
        inside_env = clean_env(env)
        # Process limit: a pids cgroup where we may create one; RLIMIT_NPROC binds non-root users.
        cgroup = PidsCgroup.create(limits.processes + 8)
        nproc = limits.processes + (_user_process_count() if os.getuid() != 0 else 0)
        try:
            if bwrap:
                prefix = _bwrap_argv(bwrap, workspace, ro, gpu, tmpfs_mb)
                isolation, notes = "full", _bwrap_notes(bwrap, limits, cgroup is not None)
                inside_env.update({"HOME": HOME_INSIDE, "TMPDIR": "/tmp"})
                inside_env["PYTHONPATH"] = os.pathsep.join([INSIDE_LIB, *filter(None, [inside_env.get("PYTHONPATH")])])
                shim = f"{INSIDE_LIB}/sandbox/_measure.py"
                sized = _sizes_tmpfs(bwrap)
                watched, address_space_mb = (list(tmpfs_mb), limits.address_space_mb()) if sized else ([], limits.memory_mb)
            else:
                prefix, no_namespaces = _unshare_argv()
                isolation, notes = "reduced", _reduced_notes(_why_no_bwrap(), no_namespaces, cgroup is not None, limits)
                home, private_tmp = scratch / "home", scratch / "tmp"
                home.mkdir()
                private_tmp.mkdir()
                inside_env.update({"HOME": str(home), "TMPDIR": str(private_tmp)})
                inside_env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [inside_env.get("PYTHONPATH")])])
                shim, watched, address_space_mb = str(PACKAGE_ROOT / "sandbox" / "_measure.py"), [], limits.memory_mb
            # Python's "safe path": the cwd (the workspace) is not put first on sys.path implicitly.
            inside_env.setdefault("PYTHONSAFEPATH", "1")

            report_r, report_w = os.pipe()  # the shim's report: no file the command could replace
            start = time.monotonic()
            try:
                argv = [*prefix, sys.executable, "-I", "-S", shim, str(report_w), *watched, "--", *cmd]
                setup = lambda: _child_setup(limits, address_space_mb, nproc, cgroup)  # noqa: E731
                status, peak_kb, timed_out = _launch(argv, workspace, inside_env, out_path, err_path, limits.wall_s, setup, report_w, cgroup, poll)
            finally:
                os.close(report_w)
                if cgroup is not None:
                    cgroup.remove()  # whatever is left, daemons included, dies here
                    cgroup = None
                report = _read_report(report_r)
        finally:
            if cgroup is not None:  # failed before the command started
                cgroup.remove()
        wall = time.monotonic() - start
        stdout = _bounded(out_path, limits.output_bytes)
        stderr = _bounded(err_path, limits.output_bytes)
        full = [p for p in watched if p in report.get("full", [])]
        sig = report.get("signal") or (os.WTERMSIG(status) if os.WIFSIGNALED(status) else None)
        reason = _reason(status, report.get("signal"), timed_out, stderr, full)
        return SandboxResult(
            returncode=os.waitstatus_to_exitcode(status),
            stdout=stdout,
            stderr=stderr,
            wall_s=round(wall, 3),
            peak_rss_mb=round(max(peak_kb, report.get("peak_rss_kb", 0)) / 1024, 1),
            reason=reason,
            isolation=isolation,
            isolation_notes=notes,
            detail=_detail(reason, sig, full, limits, bool(watched)),
        )


def _read_report(fd: int) -> dict:
    """The shim's report (peak_rss_kb, signal, full), read without blocking; {} if it wrote none."""
    os.set_blocking(fd, False)
    raw = b""
    try:
        while len(raw) < 65536:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            raw += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    report: dict = {"full": []}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "full":
            report["full"].append(value)
        elif key in ("peak_rss_kb", "signal") and value.isdigit():
            report[key] = int(value)
    return report


def _launch(argv, workspace, env, out_path, err_path, wall_s, setup, report_fd, cgroup, poll=None) -> tuple[int, int, bool]:
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
            pass_fds=(report_fd,),
            preexec_fn=setup,
        )
        status, peak_kb = _wait(proc.pid, wall_s, poll)
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


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3 / Python 3.9
        return None


def _wait(pid: int, wall_s: float, poll: Callable[[], None] | None = None) -> tuple[int | None, int]:
    """Wait for `pid` (woken the moment it exits, through a pidfd where the kernel has them)."""
    deadline = time.monotonic() + wall_s
    pidfd = _pidfd(pid)
    delay = 0.005
    try:
        while True:
            wpid, status, usage = os.wait4(pid, os.WNOHANG)
            if wpid == pid:
                return status, usage.ru_maxrss
            left = deadline - time.monotonic()
            if left <= 0:
                return None, 0
            if poll is not None:
                poll()
            if pidfd is not None:
                select.select([pidfd], [], [], min(left, 0.1))
            else:
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.1)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
