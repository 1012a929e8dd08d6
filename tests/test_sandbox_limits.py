"""Limits that bind inside bubblewrap: every writable in-memory place is sized and counted in the
memory limit, the rest of the root is read-only, and the process limit cannot be raised from inside."""

import pytest
from sandbox_helpers import new_workspace, py

import sandbox
from sandbox.runner import _bwrap_version, bwrap_path

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed (.ci/run installs it)")
sized = pytest.mark.skipif(bwrap_path() is not None and _bwrap_version(bwrap_path()) < (0, 7),
                           reason="bubblewrap older than 0.7 cannot size a tmpfs (the result's notes say so)")

# 256 MB in all: a quarter (64 MB) for the in-memory file systems, /tmp 32, HOME 16, /dev/shm 16.
SMALL = sandbox.Limits(memory_mb=256, wall_s=60)


@pytest.fixture
def workspace(tmp_path):
    return new_workspace(tmp_path)


FILL = """
    import os
    path = os.path.join({place}, "fill")
    with open(path, "wb") as fh:
        for _ in range(100):  # 100 MB, more than any of the three is given
            fh.write(b"x" * (1 << 20))
    print("wrote it all")
"""


@sized
@pytest.mark.parametrize("place, name, size_mb", [
    ("'/tmp'", "/tmp", 32),
    ("os.environ['TMPDIR']", "/tmp", 32),
    ("os.environ['HOME']", "HOME (/home/sandbox)", 16),
    ("'/dev/shm'", "/dev/shm", 16),
])
def test_writing_past_an_in_memory_file_system_stops_the_command(workspace, place, name, size_mb):
    res = sandbox.run(py(FILL.format(place=place)), workspace, limits=SMALL)
    assert res.reason == "tmpfs-full" and not res.ok, (res.reason, res.stderr)
    assert "wrote it all" not in res.stdout
    assert "No space left on device" in res.stderr
    assert res.detail.startswith(f"{name} ({size_mb} MB) is full")
    assert "256 MB memory limit" in res.detail
    assert res.one_line_error() == res.detail


@sized
def test_shared_memory_past_its_size_stops_the_command(workspace):
    # Pages of /dev/shm written through mmap: the kernel answers SIGBUS, not an error code.
    res = sandbox.run(py("""
        from multiprocessing import shared_memory
        shm = shared_memory.SharedMemory(create=True, size=64 << 20)
        shm.buf[:] = b"x" * (64 << 20)
        print("wrote it all")
    """), workspace, limits=SMALL)
    assert not res.ok and "wrote it all" not in res.stdout
    # multiprocessing's resource tracker unlinks the segment as the command dies, so /dev/shm may
    # be empty again by the time it is measured: then the SIGBUS itself is reported, as likely.
    if res.reason == "tmpfs-full":
        assert res.detail.startswith("/dev/shm (16 MB) is full")
    else:
        assert res.reason == "killed", (res.reason, res.returncode, res.stderr)
        assert res.detail.startswith("killed by SIGBUS") and "/dev/shm 16 MB" in res.detail


@pytest.mark.parametrize("place", ["/", "/home", "/dev", "/etc", "/opt/integrate", "/usr"])
def test_the_rest_of_the_root_is_read_only(workspace, place):
    res = sandbox.run(py(f"""
        import os
        try:
            open(os.path.join({place!r}, "planted"), "w").write("x")
            print("wrote")
        except OSError as e:
            print("refused", e.strerror)
    """), workspace)
    assert res.ok, res.stderr
    assert res.stdout.strip() in ("refused Read-only file system", "refused No such file or directory"), res.stdout


@sized
def test_in_memory_sizes_and_address_space_add_up_to_the_memory_limit(workspace):
    res = sandbox.run(py("""
        import os, resource
        for place in ("/tmp", os.environ["HOME"], "/dev/shm"):
            st = os.statvfs(place)
            print(place, st.f_blocks * st.f_frsize >> 20)
        print("as", resource.getrlimit(resource.RLIMIT_AS)[0] >> 20)
    """), workspace, limits=sandbox.Limits(memory_mb=2000, tmpfs_mb=400))
    assert res.ok, res.stderr
    sizes = dict(line.split() for line in res.stdout.splitlines())
    assert sizes == {"/tmp": "200", "/home/sandbox": "100", "/dev/shm": "100", "as": "1600"}
    assert any("/tmp 200 MB, HOME 100 MB, /dev/shm 100 MB" in n for n in res.isolation_notes)


@pytest.mark.parametrize("tmpfs_mb", [0, 2, 256, 300])
def test_a_tmpfs_budget_outside_the_memory_limit_is_refused(workspace, tmpfs_mb):
    with pytest.raises(ValueError, match="tmpfs_mb"):
        sandbox.run(py("pass"), workspace, limits=sandbox.Limits(memory_mb=256, tmpfs_mb=tmpfs_mb))


@sized
def test_a_command_that_succeeds_after_filling_a_place_is_not_failed(workspace):
    res = sandbox.run(py("""
        try:
            with open("/tmp/fill", "wb") as fh:
                while True:
                    fh.write(b"x" * (1 << 20))
        except OSError:
            print("handled")
    """), workspace, limits=SMALL)
    assert res.ok and res.reason == "exit" and res.stdout.strip() == "handled"


def test_the_command_holds_no_descriptor_but_its_standard_streams(workspace):
    # The shim's report pipe is closed before the command starts: the command cannot write it.
    res = sandbox.run(py("import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"), workspace)
    assert res.ok
    assert eval(res.stdout)[:3] == [0, 1, 2] and len(eval(res.stdout)) == 4  # the last: listdir's own


CGROUP_ESCAPES = """
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    tried = {}
    for line in open("/proc/self/cgroup"):
        _, _, path = line.rstrip("\\n").split(":", 2)
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"):
            for name, value in (("pids.max", "max"), ("cgroup.procs", str(os.getpid()))):
                for where in (root + path, root):
                    try:
                        with open(os.path.join(where, name), "w") as fh:
                            fh.write(value)
                        tried[where + "/" + name] = "WROTE"
                    except OSError as e:
                        tried.setdefault("write " + name, e.strerror)
    os.makedirs("/tmp/cg", exist_ok=True)
    for fstype, data in ((b"cgroup2", None), (b"cgroup", b"pids")):
        ok = libc.mount(b"none", b"/tmp/cg", fstype, 0, data) == 0
        tried["mount " + fstype.decode()] = "MOUNTED" if ok else os.strerror(ctypes.get_errno())
    CLONE_NEWUSER, CLONE_NEWCGROUP = 0x10000000, 0x02000000
    ok = libc.unshare(CLONE_NEWUSER | CLONE_NEWCGROUP) == 0
    tried["new user namespace"] = "CREATED" if ok else os.strerror(ctypes.get_errno())
    print(tried)
    # Whatever happened above, the limit must still bind: try for 64 more processes.
    children = []
    for _ in range(64):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            import time
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    print("forked", len(children))
"""


def test_the_process_limit_cannot_be_raised_from_inside(workspace):
    res = sandbox.run(py(CGROUP_ESCAPES), workspace, limits=sandbox.Limits(processes=16, wall_s=60))
    assert res.ok, res.stderr
    report, forked = res.stdout.splitlines()
    assert "WROTE" not in report and "MOUNTED" not in report and "CREATED" not in report, report
    assert int(forked.split()[1]) < 16 + 8, forked  # the runner allows 8 for bwrap and the shim


@pytest.mark.parametrize("version", [(0, 6), (0, 7)])
def test_an_older_bubblewrap_still_runs_and_says_what_it_cannot_bind(workspace, monkeypatch, version):
    """bubblewrap 0.6 has no --size and 0.7 no --disable-userns: the runner leaves out what the
    installed one lacks (the real binary, told it is older), and the notes say what that costs."""
    monkeypatch.setattr("sandbox.runner._bwrap_version", lambda bwrap: version)
    res = sandbox.run(py("""
        import os, resource
        st = os.statvfs("/tmp")
        print(st.f_blocks * st.f_frsize >> 20, resource.getrlimit(resource.RLIMIT_AS)[0] >> 20)
    """), workspace, limits=SMALL)
    assert res.ok and res.isolation == "full", res.stderr
    tmp_mb, as_mb = map(int, res.stdout.split())
    notes = " | ".join(res.isolation_notes)
    assert "older than 0.8, which added --disable-userns" in notes
    if version < (0, 7):
        assert tmp_mb > 32 and as_mb == 256  # unsized: the kernel's default, and no share taken from memory_mb
        assert "NOT bound: /tmp, HOME and /dev/shm are tmpfs without a size" in notes
    else:
        assert (tmp_mb, as_mb) == (32, 192)
        assert "/tmp 32 MB, HOME 16 MB, /dev/shm 16 MB" in notes
