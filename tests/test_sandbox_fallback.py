"""The fallback without bubblewrap: refused unless allowed, and then its notes say exactly what
is not confined. Each note is checked against what the command can really do."""

import ctypes
import os
import socket
import sys
import threading

import pytest
from sandbox_helpers import new_workspace, py

import sandbox
from sandbox.runner import IsolationRefused, allow_reduced_isolation

NOT_CONFINED_FS = "NOT confined: the file system"
NOT_CONFINED_SOCKETS = "NOT confined: host unix sockets"
NOT_CONFINED_FILES_AS_MEMORY = "NOT confined: files as memory"
NOT_CONFINED_PIDS = "NOT confined: the process limit"
NOT_CONFINED_NAMESPACES = "NOT confined: the network, host processes and System V IPC"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("INTEGRATE_SANDBOX_BACKEND", "unshare")
    return new_workspace(tmp_path)


def run_reduced(code: str, workspace, **kwargs) -> sandbox.SandboxResult:
    res = sandbox.run(py(code), workspace, allow_reduced_isolation=True, **kwargs)
    assert res.isolation == "reduced"
    return res


def has_note(res: sandbox.SandboxResult, start: str) -> bool:
    return any(note.startswith(start) for note in res.isolation_notes)


def test_fallback_is_refused_without_the_allowance(workspace, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(IsolationRefused, match="--allow-reduced-isolation"):
        sandbox.run(py(f"open({str(marker)!r}, 'w')"), workspace)
    assert not marker.exists()


def test_process_wide_allowance_lets_it_run_and_is_reported(workspace, monkeypatch):
    monkeypatch.setattr("sandbox.runner._reduced_isolation_allowed", False)
    allow_reduced_isolation()
    res = sandbox.run(py("print('ran')"), workspace)
    assert res.ok and res.stdout.strip() == "ran"
    assert res.isolation == "reduced"
    assert res.isolation_notes[0].startswith("reduced isolation, allowed explicitly (--allow-reduced-isolation)")
    allow_reduced_isolation(False)
    with pytest.raises(IsolationRefused):
        sandbox.run(py("pass"), workspace)


def test_secrets_are_filtered_in_the_fallback_too(workspace, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "s3cr3t-value")
    res = run_reduced("import os; print('GITHUB_TOKEN' in os.environ)", workspace)
    assert res.ok and res.stdout.strip() == "False"
    assert has_note(res, "confined: the environment (secrets removed)")


def test_fallback_still_applies_limits(workspace):
    res = run_reduced("while True: pass", workspace, limits=sandbox.Limits(wall_s=2))
    assert res.reason == "timeout"


def test_note_on_the_file_system_is_true(workspace, tmp_path):
    outside, private = tmp_path / "outside.txt", tmp_path / "private.txt"
    private.write_text("host secret")
    res = run_reduced(f"""
        open({str(outside)!r}, "w").write("escaped")
        print(open({str(private)!r}).read())
    """, workspace)
    assert res.ok, res.stderr
    assert outside.read_text() == "escaped" and res.stdout.strip() == "host secret"
    assert has_note(res, NOT_CONFINED_FS)


def test_note_on_host_unix_sockets_is_true(workspace, tmp_path):
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(20)
    received = []

    def accept():
        try:
            conn, _ = server.accept()
            received.append(conn.recv(100))
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    res = run_reduced(f"""
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect({str(path)!r})
        s.sendall(b"reached the host")
    """, workspace)
    t.join()
    server.close()
    assert res.ok, res.stderr
    assert received == [b"reached the host"]
    assert has_note(res, NOT_CONFINED_SOCKETS)


def test_notes_on_files_as_memory_are_true(workspace):
    # 200 MB written to HOME, TMPDIR and /dev/shm under a 128 MB memory limit: none is counted.
    res = run_reduced("""
        import os
        chunk = b"x" * (1 << 20)
        for place in (os.environ["HOME"], os.environ["TMPDIR"], "/dev/shm"):
            path = os.path.join(place, f"integrate-fill-{os.getpid()}")
            try:
                with open(path, "wb") as fh:
                    for _ in range(200):
                        fh.write(chunk)
                print(place, os.path.getsize(path) >> 20)
            finally:
                os.unlink(path)
    """, workspace, limits=sandbox.Limits(memory_mb=128))
    assert res.ok, res.stderr
    assert [line.split()[-1] for line in res.stdout.splitlines()] == ["200", "200", "200"]
    assert has_note(res, NOT_CONFINED_FILES_AS_MEMORY)


# Tries both ways past the process limit: raise pids.max of its own cgroup, and move itself to
# the parent cgroup. Prints one word for each: "raised"/"kept", "left"/"stayed".
PIDS_CGROUP_ESCAPE = """
    import os
    raised = left = False
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.rstrip("\\n").split(":", 2)
        if "pids" in controllers.split(","):
            roots = ["/sys/fs/cgroup/pids"]
        elif controllers == "":
            roots = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        else:
            continue
        for root in roots:
            try:
                with open(root + path + "/pids.max", "w") as fh:
                    fh.write("max")
                raised = True
            except OSError:
                pass
            try:
                with open(os.path.dirname(root + path) + "/cgroup.procs", "w") as fh:
                    fh.write(str(os.getpid()))
                left = True
            except OSError:
                pass
    print("raised" if raised else "kept", "left" if left else "stayed")
"""


def test_note_on_the_process_limit_is_true(workspace):
    res = run_reduced(PIDS_CGROUP_ESCAPE, workspace, limits=sandbox.Limits(processes=32))
    assert res.ok, res.stderr
    escaped = res.stdout.split() == ["raised", "left"]
    assert escaped or res.stdout.split() == ["kept", "stayed"], res.stdout
    assert escaped == has_note(res, NOT_CONFINED_PIDS), (res.stdout, res.isolation_notes)
    if os.getuid() != 0:
        assert has_note(res, "process limit: RLIMIT_NPROC")


def test_notes_on_network_and_ipc_are_true(workspace):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    abstract_name = f"\0integrate-fallback-test-{os.getpid()}"
    abstract.bind(abstract_name)
    abstract.listen(1)
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x1A7E0000 + os.getpid() % 0xFFFF
    shm_id = libc.shmget(key, 4096, 0o1000 | 0o600)  # IPC_CREAT
    assert shm_id >= 0
    try:
        res = run_reduced(f"""
            import ctypes, socket
            try:
                socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=2)
                print("tcp reached")
            except OSError:
                print("tcp refused")
            try:
                socket.socket(socket.AF_UNIX).connect({abstract_name!r})
                print("abstract reached")
            except OSError:
                print("abstract refused")
            found = ctypes.CDLL(None).shmget({key}, 0, 0)
            print("ipc shared" if found >= 0 else "ipc private")
            try:
                socket.getaddrinfo("pypi.org", 443)
                print("dns resolved")
            except OSError:
                print("dns failed")
        """, workspace)
    finally:
        libc.shmctl(shm_id, 0, None)  # IPC_RMID
        server.close()
        abstract.close()
    assert res.ok, res.stderr
    seen = res.stdout.split()
    confined = ["tcp", "refused", "abstract", "refused", "ipc", "private", "dns", "failed"]
    if has_note(res, NOT_CONFINED_NAMESPACES):
        assert seen != confined
    else:
        assert seen == confined
        assert has_note(res, "confined: the network (its own empty namespace")


def test_cli_refuses_the_fallback_without_the_flag(tmp_path):
    from conftest import assert_one_line_error, integrate

    proc = integrate("sandbox", "--workspace", str(tmp_path), "--", sys.executable, "-c", "print('hi')",
                     cwd=tmp_path, env={"INTEGRATE_SANDBOX_BACKEND": "unshare"})
    assert_one_line_error(proc, "--allow-reduced-isolation")
    assert "hi" not in proc.stdout


@pytest.mark.parametrize("where", ["first", "after the command"])
def test_cli_flag_allows_the_fallback_and_says_so(tmp_path, where):
    from conftest import integrate

    cmd = ["sandbox", "--workspace", str(tmp_path), "--", sys.executable, "-c", "print('hi')"]
    args = ["--allow-reduced-isolation", *cmd] if where == "first" else [cmd[0], "--allow-reduced-isolation", *cmd[1:]]
    proc = integrate(*args, cwd=tmp_path, env={"INTEGRATE_SANDBOX_BACKEND": "unshare"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hi"
    assert "isolation reduced" in proc.stderr and NOT_CONFINED_FS in proc.stderr


def test_cli_flag_before_a_source_still_runs_the_default_command(tmp_path):
    from conftest import assert_one_line_error, integrate

    proc = integrate("--allow-reduced-isolation", str(tmp_path / "missing"), cwd=tmp_path)
    assert_one_line_error(proc, "source not found")
