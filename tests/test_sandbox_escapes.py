"""Each escape attempt runs as untrusted code and must be contained and reported."""

import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from sandbox_helpers import new_workspace, py

import sandbox
from sandbox.runner import bwrap_path

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed (.ci/run installs it)")


@pytest.fixture
def workspace(tmp_path):
    return new_workspace(tmp_path)


def test_tcp_to_a_host_server_on_loopback_fails(workspace):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        server.settimeout(5)
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    res = sandbox.run(py(f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("CONNECTED")
        except OSError as e:
            print("refused", e)
    """), workspace)
    t.join()
    server.close()
    assert "CONNECTED" not in res.stdout and res.stdout.startswith("refused")
    assert not accepted


def test_hostname_resolution_fails(workspace):
    res = sandbox.run(py("""
        import socket
        try:
            print(socket.getaddrinfo("pypi.org", 443))
        except OSError as e:
            print("no-dns", e)
    """), workspace)
    assert res.stdout.startswith("no-dns")


def test_secrets_in_parent_environment_are_absent(workspace, monkeypatch):
    for name in ("GITHUB_TOKEN", "HF_TOKEN", "ANTHROPIC_API_KEY", "MY_SERVICE_SECRET", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD"):
        monkeypatch.setenv(name, "s3cr3t-value")
    res = sandbox.run(py("import os; print(sorted(os.environ)); print('s3cr3t-value' in str(os.environ))"), workspace,
                      env={"EXTRA_API_KEY": "s3cr3t-value"})
    assert res.stdout.strip().endswith("False")
    for name in ("GITHUB_TOKEN", "HF_TOKEN", "ANTHROPIC_API_KEY", "EXTRA_API_KEY"):
        assert name not in res.stdout


def test_file_in_users_home_is_invisible(workspace):
    home_file = Path.home() / f".integrate-escape-{os.getpid()}"
    home_file.write_text("private")
    try:
        res = sandbox.run(py(f"""
            try:
                print(open({str(home_file)!r}).read())
            except OSError as e:
                print("denied", type(e).__name__)
        """), workspace)
    finally:
        home_file.unlink()
    assert "private" not in res.stdout and res.stdout.startswith("denied")


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_writes_outside_the_workspace_fail(workspace, tmp_path, how):
    outside = tmp_path / "outside.txt"
    if how == "absolute":
        target = str(outside)
    elif how == "dotdot":
        target = "../outside.txt"
    else:
        (workspace / "link").symlink_to(outside)
        target = "link"
    res = sandbox.run(py(f"""
        try:
            open({target!r}, "w").write("escaped")
            print("wrote")
        except OSError as e:
            print("denied", type(e).__name__)
    """), workspace)
    # Either the write is refused or it lands in the sandbox's private /tmp; never on the host.
    assert res.reason == "exit"
    assert not outside.exists(), res.stdout


def test_writes_inside_the_workspace_work(workspace):
    res = sandbox.run(py("open('result.txt', 'w').write('ok')"), workspace)
    assert res.ok and (workspace / "result.txt").read_text() == "ok"


def test_fork_bomb_is_stopped(workspace):
    res = sandbox.run(py("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """), workspace, limits=sandbox.Limits(wall_s=5, processes=64))
    assert res.reason in ("timeout", "killed")
    assert res.wall_s < 30


def test_memory_bomb_is_stopped(workspace):
    res = sandbox.run(py("x = []\nwhile True: x.append(bytearray(50 * 1024 * 1024))"), workspace,
                      limits=sandbox.Limits(wall_s=30, memory_mb=1024))
    assert res.reason == "memory"
    assert not res.ok


def test_infinite_loop_is_stopped(workspace):
    start = time.monotonic()
    res = sandbox.run(py("while True: pass"), workspace, limits=sandbox.Limits(wall_s=2))
    assert res.reason == "timeout"
    assert time.monotonic() - start < 15


def test_daemon_does_not_outlive_the_run(workspace, tmp_path):
    marker = workspace / "alive"
    res = sandbox.run(py(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for _ in range(100):
                    open({str(marker)!r}, "a").write("x")
                    time.sleep(0.1)
            os._exit(0)
        print("parent exits")
    """), workspace, limits=sandbox.Limits(wall_s=10))
    assert res.ok
    time.sleep(0.5)
    size = marker.stat().st_size if marker.exists() else 0
    time.sleep(1.0)
    assert (marker.stat().st_size if marker.exists() else 0) == size, "a daemon is still writing after the run ended"


def test_endless_file_is_stopped(workspace):
    res = sandbox.run(["sh", "-c", "yes > endless.txt"], workspace, limits=sandbox.Limits(file_mb=5, wall_s=30))
    assert res.reason == "file-size"
    assert (workspace / "endless.txt").stat().st_size <= 5 * 1024 * 1024


def test_output_is_bounded(workspace):
    res = sandbox.run(py("print('x' * 1_000_000)"), workspace, limits=sandbox.Limits(output_bytes=10_000))
    assert len(res.stdout) < 11_000 and "bytes cut" in res.stdout


def test_result_reports_full_isolation_and_peak_memory(workspace):
    res = sandbox.run(py("b = bytearray(200 * 1024 * 1024); print(len(b))"), workspace)
    assert res.ok and res.isolation == "full"
    assert res.peak_rss_mb >= 200


def test_cli_sandbox_command_reports(tmp_path):
    from conftest import integrate

    proc = integrate("sandbox", "--workspace", str(tmp_path), "--", sys.executable, "-c", "print('hi')", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hi"
    assert "isolation full" in proc.stderr


def test_orphan_cgroups_of_dead_parents_are_removed():
    from pathlib import Path

    from sandbox.cgroup import PidsCgroup, _pids_root

    found = _pids_root()
    if found is None:
        pytest.skip("no writable pids cgroup on this machine")
    orphan = found[0] / "integrate-999999-0"  # pid 999999 is above pid_max: never alive
    orphan.mkdir(exist_ok=True)
    group = PidsCgroup.create(10)
    group.remove()
    assert not orphan.exists()
    assert not any(p for p in Path(found[0]).glob(f"integrate-{__import__('os').getpid()}-*"))
