"""Host-side file access to places that sandboxed code could write.

A sandboxed job can replace any file of its workspace with a symlink (to the user's private
key, to /dev/zero), a FIFO (the host blocks forever on open) or a huge file. Everything the
host reads, writes or copies under such a folder goes through here: each path component is
opened relative to its parent's descriptor with O_NOFOLLOW, only regular files are read, reads
are capped, and writes create a fresh file instead of writing through whatever sits there.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading must not wait for a writer; regular files ignore it.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

DEFAULT_READ_LIMIT = 64 * 1024 * 1024


class UnsafeFileError(OSError):
    """A path under an untrusted folder is a link, not a regular file, or too large."""


def _parts(rel: str | os.PathLike) -> list[str]:
    rel = os.fspath(rel)
    if "\x00" in rel:
        raise UnsafeFileError(f"path contains a NUL byte: {rel!r}")
    parts = [p for p in Path(rel).parts if p not in ("", ".")]
    if not parts or os.path.isabs(rel) or ".." in parts:
        raise UnsafeFileError(f"not a plain relative path: {rel}")
    return parts


@contextmanager
def _open_dir(root: str | os.PathLike, parts: list[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of root/parts..., never following a link below `root` (root itself is
    created by trusted code and may be reached through links of the user's own)."""
    fd = os.open(os.fspath(root), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts:
            if create:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise UnsafeFileError(f"{name}: not a plain folder ({exc.strerror})") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_regular(root: str | os.PathLike, rel: str | os.PathLike, *, max_bytes: int | None = DEFAULT_READ_LIMIT) -> Iterator[int]:
    """A read-only descriptor of the regular file root/rel (no link anywhere below root)."""
    *dirs, name = _parts(rel)
    with _open_dir(root, dirs) as dfd:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
        except OSError as exc:
            if exc.errno in (40, 20):  # ELOOP (a link), ENOTDIR
                raise UnsafeFileError(f"{rel}: is a link, not a file") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeFileError(f"{rel}: not a regular file")
            if max_bytes is not None and st.st_size > max_bytes:
                raise UnsafeFileError(f"{rel}: {st.st_size} bytes, over the limit of {max_bytes}")
            os.set_blocking(fd, True)
            yield fd
        finally:
            os.close(fd)


def read_bytes(root: str | os.PathLike, rel: str | os.PathLike, *, max_bytes: int = DEFAULT_READ_LIMIT) -> bytes:
    with open_regular(root, rel, max_bytes=max_bytes) as fd:
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:  # grew while we read
                raise UnsafeFileError(f"{rel}: over the limit of {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def read_text(root: str | os.PathLike, rel: str | os.PathLike, *, max_bytes: int = DEFAULT_READ_LIMIT) -> str:
    return read_bytes(root, rel, max_bytes=max_bytes).decode("utf-8", errors="replace")


def read_json(root: str | os.PathLike, rel: str | os.PathLike, *, max_bytes: int = 16 * 1024 * 1024) -> Any:
    return json.loads(read_bytes(root, rel, max_bytes=max_bytes))


def exists_regular(root: str | os.PathLike, rel: str | os.PathLike) -> bool:
    try:
        with open_regular(root, rel, max_bytes=None):
            return True
    except OSError:
        return False


def write_bytes(root: str | os.PathLike, rel: str | os.PathLike, data: bytes) -> None:
    """Write root/rel as a new regular file: whatever was there (a link, a FIFO) is unlinked,
    never written through."""
    *dirs, name = _parts(rel)
    with _open_dir(root, dirs, create=True) as dfd:
        try:
            os.unlink(name, dir_fd=dfd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise UnsafeFileError(f"{rel}: is a folder") from None
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)


def write_text(root: str | os.PathLike, rel: str | os.PathLike, text: str) -> None:
    write_bytes(root, rel, text.encode("utf-8"))


def copy_out(src_root: str | os.PathLike, rel: str | os.PathLike, dest: str | os.PathLike, *, max_bytes: int = DEFAULT_READ_LIMIT) -> Path:
    """Copy the regular file src_root/rel (untrusted folder) to `dest`, streaming, replacing
    whatever is at `dest` (a link there is removed, not followed)."""
    dest = Path(dest)
    with open_regular(src_root, rel, max_bytes=max_bytes) as src:
        with _open_dir(dest.parent, []) as dfd:
            try:
                os.unlink(dest.name, dir_fd=dfd)
            except FileNotFoundError:
                pass
            out = os.open(dest.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dfd)
            try:
                copied = 0
                while True:
                    n = os.sendfile(out, src, None, 1 << 26)
                    if n == 0:
                        break
                    copied += n
                    if copied > max_bytes:
                        raise UnsafeFileError(f"{rel}: over the limit of {max_bytes} bytes")
            finally:
                os.close(out)
    return dest


def copy_tree_out(src_root: str | os.PathLike, rel: str | os.PathLike, dest: str | os.PathLike, *, max_bytes: int = DEFAULT_READ_LIMIT) -> list[str]:
    """Copy the folder src_root/rel to `dest` (which must not exist yet): regular files and
    folders only; a link or any other kind of file stops the copy. Returns the files copied."""
    dest = Path(dest)
    dest.mkdir(parents=True)
    copied: list[str] = []
    base = _parts(rel)
    with _open_dir(src_root, base) as dfd:
        names = sorted(os.listdir(dfd))
    for name in names:
        child = Path(*base, name)
        st = _lstat(src_root, child)
        if stat.S_ISDIR(st.st_mode):
            copied += [f"{name}/{c}" for c in copy_tree_out(src_root, child, dest / name, max_bytes=max_bytes)]
        elif stat.S_ISREG(st.st_mode):
            copy_out(src_root, child, dest / name, max_bytes=max_bytes)
            copied.append(name)
        else:
            raise UnsafeFileError(f"{child}: a link or special file, refused")
    return copied


def _lstat(root: str | os.PathLike, rel: Path) -> os.stat_result:
    *dirs, name = _parts(rel)
    with _open_dir(root, dirs) as dfd:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)


def proc_path(fd: int) -> str:
    """A path naming exactly this open file, for libraries that only take paths."""
    return f"/proc/self/fd/{fd}"
