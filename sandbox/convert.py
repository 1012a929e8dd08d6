"""Streaming checkpoint conversion: reference safetensors -> diffusers safetensors, tensor by tensor.

The mapping is a `_weight_mapping.py` module that depends only on torch (docs/weight-mapping.md):

    KEYS = {"old.key": "new.key"}              # exact renames (checked first)
    RESHAPE = {"old.key": (64, 64)}            # same bytes, another shape (1x1 conv <-> linear)
    RENAMES = [("old.", "new."), ...]          # substring renames, applied in order
    DROP = {"key": "why it is not used"}       # reference keys deliberately left out
    HANDLERS = {r"regex": fn}                  # fn(key, tensor) -> {new_key: tensor}  (split, reshape, ...)
    FUSE = {"new_key": (["in1", "in2"], fn)}   # fn(*tensors) -> tensor                 (split -> fused)

Pass 1 runs the mapping on `meta` tensors (shapes and dtypes, no data) to plan every output, its
shard and its byte offsets, and to catch duplicate and missing keys before anything is written.
Pass 2 reads each input with one read at its offset (not through mmap, whose touched pages would
all count as resident), converts it and writes its bytes straight to the planned place, so peak
memory stays near the largest tensor group, not the checkpoint. The next input is read ahead by
the kernel (posix_fadvise) while the current one is written.
Output goes to a temporary folder renamed into place at the end: a failure leaves nothing.
Inputs are validated by the rules safetensors itself applies (sandbox.safetensors_header; pickle
checkpoints are refused unread), and the written shards are opened with safetensors' own reader
and checked key by key against the plan before anything is reported as converted.
"""

from __future__ import annotations

import importlib.util
import json
import numbers
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.safetensors_header import SafetensorsFormatError, name_problem, read_header

if TYPE_CHECKING:
    import torch

WEIGHTS_NAME = "diffusion_pytorch_model"
HEADER_ALLOWANCE_PER_OUTPUT = 160  # bytes of header JSON reserved per expected output beyond its key


@cache
def dtype_names() -> dict:
    """torch dtype -> safetensors dtype code (imports torch, so called only once it is needed)."""
    import torch

    names = {
        torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
        torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
        torch.bool: "BOOL",
    }
    optional = (
        ("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2"), ("float8_e8m0fnu", "F8_E8M0"),
        ("float8_e4m3fnuz", "F8_E4M3FNUZ"), ("float8_e5m2fnuz", "F8_E5M2FNUZ"),
        ("uint16", "U16"), ("uint32", "U32"), ("uint64", "U64"), ("complex64", "C64"),
    )
    for name, code in optional:
        if hasattr(torch, name):
            names[getattr(torch, name)] = code
    return names


# safetensors stores these, but torch has no dtype for them: a diffusers folder holding one
# could not be loaded, so the converter refuses them (checked without importing torch).
NOT_LOADABLE_BY_TORCH = {"F6_E2M3", "F6_E3M2"}


def torch_dtype(code: str):
    return {v: k for k, v in dtype_names().items()}[code]


class ConversionError(Exception):
    """A problem with the inputs or the mapping; the message names it."""


@dataclass
class Mapping:
    keys: dict[str, str] = field(default_factory=dict)
    renames: list[tuple[str, str]] = field(default_factory=list)
    reshape: dict[str, tuple] = field(default_factory=dict)
    drop: dict[str, str] = field(default_factory=dict)
    handlers: list[tuple[re.Pattern, Callable]] = field(default_factory=list)
    fuse: dict[str, tuple[list[str], Callable]] = field(default_factory=dict)
    convert_config: Callable[[dict], dict] | None = None  # reference config.json -> the port's

    @classmethod
    def load(cls, path: str | Path | None) -> Mapping:
        if path is None:
            return cls()
        spec = importlib.util.spec_from_file_location("_weight_mapping", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConversionError(f"mapping {Path(path).name} fails to load: {exc.__class__.__name__}: {exc}") from exc
        return cls(
            keys=dict(getattr(module, "KEYS", {})),
            reshape={k: _shape(k, v) for k, v in getattr(module, "RESHAPE", {}).items()},
            renames=list(getattr(module, "RENAMES", [])),
            drop=dict(getattr(module, "DROP", {})),
            handlers=[(re.compile(p), fn) for p, fn in getattr(module, "HANDLERS", {}).items()],
            fuse=dict(getattr(module, "FUSE", {})),
            convert_config=getattr(module, "convert_config", None),
        )

    def rename(self, key: str) -> str:
        if key in self.keys:
            return self.keys[key]
        for old, new in self.renames:
            key = key.replace(old, new)
        return key


def _shape(key: str, value: object) -> tuple[int, ...]:
    """A RESHAPE target as a tuple of ints; True, 2.0 or -1 would write a header safetensors refuses."""
    try:
        dims = tuple(value)
    except TypeError:
        dims = None
    if dims is None or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ConversionError(f"mapping: RESHAPE[{key!r}] = {value!r}: a shape is a sequence of non-negative integers")
    return tuple(int(d) for d in dims)


@dataclass
class Source:
    key: str
    file: Path
    dtype: str
    shape: list[int]
    start: int = 0  # absolute byte offsets in the file
    end: int = 0


class _Reader:
    """Reads one tensor at a time with a single readinto (no mmap: only that tensor is resident),
    and asks the kernel to read ahead what comes next, so disk reads overlap our writes."""

    def __init__(self) -> None:
        self.handles: dict[Path, int] = {}

    def open(self, path: Path) -> None:
        """Opened before the copier thread starts, which then only reads the table."""
        if path not in self.handles:
            self.handles[path] = os.open(path, os.O_RDONLY)

    def _fd(self, path: Path) -> int:
        self.open(path)
        return self.handles[path]

    def prefetch(self, src: Source) -> None:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd(src.file), src.start, src.end - src.start, os.POSIX_FADV_WILLNEED)

    def read(self, src: Source, scratch: torch.Tensor) -> torch.Tensor:
        """The tensor, read into `scratch` (a uint8 buffer reused across steps)."""
        nbytes = src.end - src.start
        raw = scratch[:nbytes]
        tensor = raw.view(torch_dtype(src.dtype)).view(src.shape) if nbytes else scratch.new_empty(src.shape, dtype=torch_dtype(src.dtype))
        view = memoryview(raw.numpy()) if nbytes else memoryview(b"")
        fd, pos, got = self._fd(src.file), src.start, 0
        while got < len(view):
            n = os.preadv(fd, [view[got:]], pos + got)
            if n <= 0:
                raise ConversionError(f"{src.file.name}: unexpected end of file reading {src.key!r}")
            got += n
        if hasattr(os, "posix_fadvise"):  # done with these pages: let the cache drop them
            os.posix_fadvise(fd, src.start, src.end - src.start, os.POSIX_FADV_DONTNEED)
        return tensor

    def copy(self, src: Source, out_fd: int, out_offset: int) -> None:
        """Bytes of an unchanged tensor, file to file inside the kernel (what cp does)."""
        fd, done, total = self._fd(src.file), 0, src.end - src.start
        while done < total:
            try:
                n = os.copy_file_range(fd, out_fd, total - done, src.start + done, out_offset + done)
            except OSError:
                n = 0
            if n <= 0:  # not supported between these files: fall back to read + write
                chunk = os.pread(fd, min(total - done, 64 << 20), src.start + done)
                n = os.pwrite(out_fd, chunk, out_offset + done)
            done += n

    def close(self) -> None:
        for fd in self.handles.values():
            os.close(fd)


@dataclass
class Step:
    """One unit of work: some input keys -> some outputs. A plain rename moves bytes unchanged."""

    inputs: list[str]
    run: Callable[..., dict[str, torch.Tensor]]
    rename_to: str | None = None
    reshape: tuple | None = None


@dataclass
class Planned:
    key: str
    dtype: str
    shape: list[int]
    nbytes: int
    shard: int = 0
    offset: int = 0
    origin: str = ""  # the input key it comes from (the first, for fused outputs)


def _sources(files: list[Path]) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for f in files:
        try:
            header = read_header(f)
        except SafetensorsFormatError as exc:
            raise ConversionError(str(exc)) from None
        for key, info in header.tensors.items():
            if key in sources:
                raise ConversionError(f"key {key!r} is in both {sources[key].file.name} and {f.name}")
            begin, end = info.offsets
            sources[key] = Source(key, f, info.dtype, info.shape, header.data_start + begin, header.data_start + end)
    return sources


def _steps(mapping: Mapping, sources: dict[str, Source]) -> list[Step]:
    fused_inputs = {k for ins, _ in mapping.fuse.values() for k in ins}
    steps: list[Step] = []
    for out_key, (ins, fn) in mapping.fuse.items():
        missing = [k for k in ins if k not in sources]
        if missing:
            raise ConversionError(f"missing key {missing[0]!r} needed for {out_key!r}")
        steps.append(Step(list(ins), lambda *ts, _k=out_key, _fn=fn: {_k: _fn(*ts)}))
    for key in sources:
        if key in mapping.drop or key in fused_inputs:
            continue
        handler = next((fn for pattern, fn in mapping.handlers if pattern.search(key)), None)
        if handler is not None:
            steps.append(Step([key], lambda t, _k=key, _fn=handler: _fn(_k, t)))
        else:
            new = mapping.rename(key)
            if key in mapping.reshape:  # same bytes in another shape: still moved file to file
                steps.append(Step([key], lambda t, _n=new, _s=mapping.reshape[key]: {_n: t.reshape(_s)}, rename_to=new, reshape=mapping.reshape[key]))
            else:
                steps.append(Step([key], lambda t, _n=new: {_n: t}, rename_to=new))
    missing_drop = [k for k in mapping.drop if k not in sources]
    if missing_drop:
        raise ConversionError(f"missing key {missing_drop[0]!r} (listed in DROP)")
    return steps


def _meta(source: Source) -> torch.Tensor:
    import torch

    if source.dtype not in dtype_names().values():
        raise ConversionError(f"tensor {source.key!r} has dtype {source.dtype}, which torch cannot load for the mapping code")
    return torch.empty(source.shape, dtype=torch_dtype(source.dtype), device="meta")


def _plan_renames(steps: list[Step], sources: dict[str, Source]) -> dict[str, Planned]:
    """Outputs of the steps that only rename (and maybe reshape): known from headers, no torch."""
    planned: dict[str, Planned] = {}
    for step in steps:
        if step.rename_to is None:
            continue
        src = sources[step.inputs[0]]
        shape = list(step.reshape or src.shape)
        if _numel(shape) != _numel(src.shape):
            raise ConversionError(f"mapping fails on {src.key!r}: RESHAPE to {tuple(shape)} does not fit shape {tuple(src.shape)}")
        if step.rename_to in planned:
            raise ConversionError(f"duplicate key after mapping: {step.rename_to!r} (from {planned[step.rename_to].origin!r} and {src.key!r})")
        planned[step.rename_to] = _output(Planned(step.rename_to, src.dtype, shape, src.end - src.start, origin=src.key))
    return planned


def _output(p: Planned) -> Planned:
    """`p`, if safetensors can store it and torch can load it back."""
    problem = name_problem(p.key)
    if problem:
        raise ConversionError(f"output key {p.key!r} (from {p.origin!r}) {problem}")
    if p.dtype in NOT_LOADABLE_BY_TORCH:
        raise ConversionError(f"tensor {p.origin!r} has dtype {p.dtype}: safetensors stores it, but torch cannot load it from the converted folder")
    return p


def _plan_transforms(steps: list[Step], sources: dict[str, Source], planned: dict[str, Planned]) -> None:
    """Outputs of the steps that run mapping code, computed on meta tensors (this imports torch)."""
    for step in steps:
        if step.rename_to is not None:
            continue
        try:
            outputs = step.run(*(_meta(sources[k]) for k in step.inputs))
        except ConversionError:
            raise
        except Exception as exc:
            raise ConversionError(f"mapping fails on {step.inputs[0]!r}: {exc.__class__.__name__}: {exc}") from exc
        for key, t in outputs.items():
            if key in planned:
                raise ConversionError(f"duplicate key after mapping: {key!r} (from {planned[key].origin!r} and {step.inputs[0]!r})")
            if t.dtype not in dtype_names():
                raise ConversionError(f"output {key!r} has dtype {t.dtype}, which safetensors cannot store")
            planned[key] = _output(Planned(key, dtype_names()[t.dtype], list(t.shape), t.numel() * t.element_size(), origin=step.inputs[0]))


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _check_expected(planned: dict[str, Planned], expect_keys: list[str] | None) -> None:
    if expect_keys is None:
        return
    missing = sorted(set(expect_keys) - set(planned))
    extra = sorted(set(planned) - set(expect_keys))
    if missing:
        raise ConversionError(f"missing key after mapping: {missing[0]!r} ({len(missing)} expected keys not produced)")
    if extra:
        raise ConversionError(f"unexpected key after mapping: {extra[0]!r} ({len(extra)} keys the model does not have)")


def _layout(items: list[Planned], max_shard_bytes: int, shard: int = 0, size: int = 0) -> tuple[int, int]:
    """Assign shards and offsets in order, filling each shard up to the limit; returns where it ended."""
    for p in items:
        if size and size + p.nbytes > max_shard_bytes:
            shard, size = shard + 1, 0
        p.shard, p.offset = shard, size
        size += p.nbytes
    return shard, size


def _shard_name(i: int, n: int) -> str:
    return f"{WEIGHTS_NAME}.safetensors" if n == 1 else f"{WEIGHTS_NAME}-{i + 1:05d}-of-{n:05d}.safetensors"


def _header_bytes(items: list[Planned], metadata: dict[str, str], length: int | None = None) -> bytes:
    """The 8-byte length and the JSON header, space-padded to 8-byte alignment or to `length`
    bytes in all (a reserved header; the format allows trailing spaces)."""
    header = {"__metadata__": metadata}
    for p in items:
        header[p.key] = {"dtype": p.dtype, "shape": p.shape, "data_offsets": [p.offset, p.offset + p.nbytes]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    if length is None:
        raw += b" " * ((8 - len(raw) % 8) % 8)  # the data section starts 8-byte aligned
    else:
        if 8 + len(raw) > length:
            raise _HeaderTooSmall
        raw += b" " * (length - 8 - len(raw))
    return len(raw).to_bytes(8, "little") + raw


class _HeaderTooSmall(Exception):
    """The reserved header space cannot hold the final header: convert again without reserving."""


class _Copier(threading.Thread):
    """Moves renamed tensors file to file in the background while the main thread imports torch,
    plans and runs the mapping code."""

    def __init__(self, jobs: list[tuple[Source, int, int]], reader: _Reader):
        super().__init__(name="copier", daemon=True)
        self.jobs, self.reader = jobs, reader
        self.done_bytes = 0
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for src, fd, at in self.jobs:
                if self.stop.is_set():
                    return
                self.reader.copy(src, fd, at)
                self.done_bytes += src.end - src.start
        except BaseException as exc:  # re-raised by the main thread
            self.error = exc


def convert(
    files: list[str | Path],
    mapping_path: str | Path | None,
    out: str | Path,
    max_shard_bytes: int = 5 * 1024**3,
    expect_keys: list[str] | None = None,
    config: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    early_copy: bool = True,
) -> dict:
    """Convert, leaving `out` complete or not at all.

    With `early_copy`, renamed tensors are laid out first and copied as soon as the headers are
    read, while the mapping code is planned on meta tensors (which needs torch, a second or more
    to import); the header of the shard those outputs may join is reserved with room to spare.
    If the final header does not fit, the conversion runs again without reserving.
    """
    files = [Path(f) for f in files]
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConversionError(f"output folder exists and is not empty: {out}")
    mapping = Mapping.load(mapping_path)
    sources = _sources(files)
    steps = _steps(mapping, sources)
    renamed = _plan_renames(steps, sources)
    transforms = [s for s in steps if s.rename_to is None]

    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    reader = _Reader()
    for src in sources.values():
        reader.open(src.file)
    handles: dict[int, int] = {}
    copier = None
    try:
        def shard_fd(i: int) -> int:
            if i not in handles:
                handles[i] = os.open(tmp / f"shard-{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            return handles[i]

        last_shard, last_size = _layout(list(renamed.values()), max_shard_bytes)
        reserved: dict[int, int] = {}  # shard -> header length in bytes, fixed before its data is written
        if early_copy and renamed:
            for i in range(last_shard + 1):
                items = [p for p in renamed.values() if p.shard == i]
                length = len(_header_bytes(items, {"format": "pt"}))
                if i == last_shard:  # the mapping code's outputs may join this shard
                    room = sum(len(k) + HEADER_ALLOWANCE_PER_OUTPUT for s in transforms for k in s.inputs) * 4
                    length += room + (8 - room % 8) % 8
                reserved[i] = length
            jobs = [(sources[p.origin], shard_fd(p.shard), reserved[p.shard] + p.offset) for p in renamed.values()]
            copier = _Copier(jobs, reader)
            copier.start()

        planned = dict(renamed)
        _plan_transforms(steps, sources, planned)  # imports torch: the copier is busy meanwhile
        _check_expected(planned, expect_keys)
        made = [p for k, p in planned.items() if k not in renamed]
        n_shards = _layout(made, max_shard_bytes, last_shard, last_size)[0] + 1
        by_shard: dict[int, list[Planned]] = {}
        for p in planned.values():
            by_shard.setdefault(p.shard, []).append(p)
        heads = {i: _header_bytes(items, {"format": "pt"}, reserved.get(i)) for i, items in by_shard.items()}
        data_start = {i: len(h) for i, h in heads.items()}

        total = sum(p.nbytes for p in planned.values())
        renamed_bytes = sum(p.nbytes for p in renamed.values())
        done = 0
        if copier is None:  # no early copy: renamed tensors are copied in step order below
            for p in renamed.values():
                reader.copy(sources[p.origin], shard_fd(p.shard), data_start[p.shard] + p.offset)
                done += p.nbytes
                if progress:
                    progress(done, total)
        _run_transforms(transforms, sources, planned, reader, shard_fd, data_start, lambda n: progress(done + n + (copier.done_bytes if copier else 0), total) if progress else None)
        if copier is not None:
            while copier.is_alive():
                copier.join(0.2)
                if progress:
                    progress(total - renamed_bytes + copier.done_bytes, total)
            if copier.error is not None:
                raise copier.error
        for i, head in heads.items():
            os.pwrite(shard_fd(i), head, 0)
        for fd in handles.values():
            os.close(fd)
        handles.clear()
        for i in range(n_shards):
            os.replace(tmp / f"shard-{i}", tmp / _shard_name(i, n_shards))
        if n_shards > 1:
            index = {
                "metadata": {"total_size": total},
                "weight_map": {p.key: _shard_name(p.shard, n_shards) for p in planned.values()},
            }
            (tmp / f"{WEIGHTS_NAME}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        if config and mapping.convert_config is not None:  # the port renamed its config arguments
            try:
                converted = mapping.convert_config(json.loads(Path(config).read_text()))
            except ValueError as exc:
                raise ConversionError(f"config {Path(config).name} cannot be converted: {exc}") from None
            (tmp / "config.json").write_text(json.dumps(converted, indent=2) + "\n")
        elif config:
            shutil.copy(config, tmp / "config.json")
        _check_loadable(tmp, n_shards, planned)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except _HeaderTooSmall:
        _abandon(copier, reader, handles, tmp)
        return convert(files, mapping_path, out, max_shard_bytes, expect_keys, config, progress, early_copy=False)
    except BaseException:
        _abandon(copier, reader, handles, tmp)
        raise
    reader.close()
    return {
        "tensors_in": len(sources),
        "tensors_out": len(planned),
        "bytes": total,
        "shards": n_shards,
        "largest_tensor_bytes": max((p.nbytes for p in planned.values()), default=0),
        "out": str(out),
    }


def _check_loadable(folder: Path, n_shards: int, planned: dict[str, Planned]) -> None:
    """Open every written shard with safetensors' own reader and compare keys, dtypes and shapes
    with the plan: the conversion succeeds only if the output loads."""
    from safetensors import SafetensorError, safe_open

    by_file: dict[str, dict[str, Planned]] = {}
    for p in planned.values():
        by_file.setdefault(_shard_name(p.shard, n_shards), {})[p.key] = p
    for name, expected in sorted(by_file.items()):
        try:
            with safe_open(str(folder / name), framework="numpy") as f:  # numpy: the header check without importing torch
                keys = set(f.keys())
                if keys != expected.keys():
                    odd = sorted(keys ^ expected.keys())[0]
                    raise ConversionError(f"written {name} does not hold the planned tensors (first difference: {odd!r})")
                for key in sorted(keys):
                    view = f.get_slice(key)
                    got, want = (view.get_dtype(), list(view.get_shape())), (expected[key].dtype, expected[key].shape)
                    if got != want:
                        raise ConversionError(f"written {name}: tensor {key!r} reads back as {got[0]} {got[1]}, planned {want[0]} {want[1]}")
        except SafetensorError as exc:
            raise ConversionError(f"written {name} does not load with safetensors: {str(exc).splitlines()[0]}") from None


def _abandon(copier: _Copier | None, reader: _Reader, handles: dict[int, int], tmp: Path) -> None:
    """Stop the background copy, close everything, and leave nothing behind."""
    if copier is not None:
        copier.stop.set()
        copier.join()
    reader.close()
    for fd in handles.values():
        os.close(fd)
    handles.clear()
    shutil.rmtree(tmp, ignore_errors=True)


def _run_transforms(steps: list[Step], sources: dict[str, Source], planned: dict[str, Planned], reader: _Reader,
                    shard_fd: Callable[[int], int], data_start: dict[int, int], progress: Callable[[int], None]) -> None:
    """Read each transformed step's inputs into one reused buffer, run the mapping code, write the
    outputs where they were planned; the kernel reads the next step's inputs ahead."""
    import torch

    if not steps:
        return
    scratch = torch.empty(max(sum(sources[k].end - sources[k].start for k in s.inputs) for s in steps), dtype=torch.uint8)
    done = 0
    for n, step in enumerate(steps):
        if n + 1 < len(steps):
            for key in steps[n + 1].inputs:
                reader.prefetch(sources[key])
        tensors, at = [], 0
        for key in step.inputs:
            size = sources[key].end - sources[key].start
            tensors.append(reader.read(sources[key], scratch[at:at + size]))
            at += size
        for key, t in step.run(*tensors).items():
            p = planned[key]
            data = t.detach().contiguous().view(-1).view(torch.uint8).numpy()
            written = 0
            while written < p.nbytes:
                written += os.pwrite(shard_fd(p.shard), memoryview(data)[written:], data_start[p.shard] + p.offset + written)
            done += p.nbytes
        del tensors
        progress(done)


def main(argv: list[str] | None = None) -> int:
    """python -m sandbox.convert --mapping M --out DIR [--max-shard-bytes N] [--expect-keys F] [--config F] CKPT..."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sandbox.convert")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--mapping")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-shard-bytes", type=int, default=5 * 1024**3)
    parser.add_argument("--expect-keys")
    parser.add_argument("--config")
    parser.add_argument("--progress-file")
    parser.add_argument("--result")
    args = parser.parse_args(argv)

    def report(done: int, total: int) -> None:
        if args.progress_file:
            Path(args.progress_file).write_text(f"{done} {total}\n")

    try:
        expect = json.loads(Path(args.expect_keys).read_text()) if args.expect_keys else None
        result = convert(args.checkpoints, args.mapping, args.out, args.max_shard_bytes, expect, args.config, report)
    except ConversionError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.result:
        Path(args.result).write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: unloading torch took about 0.4 s here (a tenth of converting
    # 4 GB), and every file this process wrote is closed and renamed into place already.
    os._exit(status)
