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
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sandbox.safetensors_header import SafetensorsFormatError, read_header

DTYPE_NAMES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
for _name, _code in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _name):
        DTYPE_NAMES[getattr(torch, _name)] = _code
TORCH_DTYPES = {v: k for k, v in DTYPE_NAMES.items()}
WEIGHTS_NAME = "diffusion_pytorch_model"


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
            reshape={k: tuple(v) for k, v in getattr(module, "RESHAPE", {}).items()},
            renames=list(getattr(module, "RENAMES", [])),
            drop=dict(getattr(module, "DROP", {})),
            handlers=[(re.compile(p), fn) for p, fn in getattr(module, "HANDLERS", {}).items()],
            fuse=dict(getattr(module, "FUSE", {})),
        )

    def rename(self, key: str) -> str:
        if key in self.keys:
            return self.keys[key]
        for old, new in self.renames:
            key = key.replace(old, new)
        return key


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

    def _fd(self, path: Path) -> int:
        if path not in self.handles:
            self.handles[path] = os.open(path, os.O_RDONLY)
        return self.handles[path]

    def prefetch(self, src: Source) -> None:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd(src.file), src.start, src.end - src.start, os.POSIX_FADV_WILLNEED)

    def read(self, src: Source, scratch: torch.Tensor) -> torch.Tensor:
        """The tensor, read into `scratch` (a uint8 buffer reused across steps)."""
        nbytes = src.end - src.start
        raw = scratch[:nbytes]
        tensor = raw.view(TORCH_DTYPES[src.dtype]).view(src.shape) if nbytes else torch.empty(src.shape, dtype=TORCH_DTYPES[src.dtype])
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


@dataclass
class Planned:
    key: str
    dtype: str
    shape: list[int]
    nbytes: int
    shard: int = 0
    offset: int = 0


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
                steps.append(Step([key], lambda t, _n=new, _s=mapping.reshape[key]: {_n: t.reshape(_s)}, rename_to=new))
            else:
                steps.append(Step([key], lambda t, _n=new: {_n: t}, rename_to=new))
    missing_drop = [k for k in mapping.drop if k not in sources]
    if missing_drop:
        raise ConversionError(f"missing key {missing_drop[0]!r} (listed in DROP)")
    return steps


def _meta(source: Source) -> torch.Tensor:
    return torch.empty(source.shape, dtype=TORCH_DTYPES[source.dtype], device="meta")


def plan(files: list[Path], mapping: Mapping, max_shard_bytes: int, expect_keys: list[str] | None = None):
    """Outputs of every step (computed on meta tensors), sharded, with byte offsets."""
    sources = _sources(files)
    steps = _steps(mapping, sources)
    planned: dict[str, Planned] = {}
    produced_by: dict[str, str] = {}
    for step in steps:
        try:
            outputs = step.run(*(_meta(sources[k]) for k in step.inputs))
        except Exception as exc:
            raise ConversionError(f"mapping fails on {step.inputs[0]!r}: {exc.__class__.__name__}: {exc}") from exc
        for key, t in outputs.items():
            if key in planned:
                raise ConversionError(f"duplicate key after mapping: {key!r} (from {produced_by[key]!r} and {step.inputs[0]!r})")
            if t.dtype not in DTYPE_NAMES:
                raise ConversionError(f"output {key!r} has dtype {t.dtype}, which safetensors cannot store")
            planned[key] = Planned(key, DTYPE_NAMES[t.dtype], list(t.shape), t.numel() * t.element_size())
            produced_by[key] = step.inputs[0]
    if expect_keys is not None:
        missing = sorted(set(expect_keys) - set(planned))
        extra = sorted(set(planned) - set(expect_keys))
        if missing:
            raise ConversionError(f"missing key after mapping: {missing[0]!r} ({len(missing)} expected keys not produced)")
        if extra:
            raise ConversionError(f"unexpected key after mapping: {extra[0]!r} ({len(extra)} keys the model does not have)")
    shard, size = 0, 0
    for p in planned.values():
        if size and size + p.nbytes > max_shard_bytes:
            shard, size = shard + 1, 0
        p.shard, p.offset = shard, size
        size += p.nbytes
    return sources, steps, planned, shard + 1


def _shard_name(i: int, n: int) -> str:
    return f"{WEIGHTS_NAME}.safetensors" if n == 1 else f"{WEIGHTS_NAME}-{i + 1:05d}-of-{n:05d}.safetensors"


def _header_bytes(items: list[Planned], metadata: dict[str, str]) -> bytes:
    header = {"__metadata__": metadata}
    for p in items:
        header[p.key] = {"dtype": p.dtype, "shape": p.shape, "data_offsets": [p.offset, p.offset + p.nbytes]}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)  # the data section starts 8-byte aligned
    return len(raw).to_bytes(8, "little") + raw


def convert(
    files: list[str | Path],
    mapping_path: str | Path | None,
    out: str | Path,
    max_shard_bytes: int = 5 * 1024**3,
    expect_keys: list[str] | None = None,
    config: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    files = [Path(f) for f in files]
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConversionError(f"output folder exists and is not empty: {out}")
    mapping = Mapping.load(mapping_path)
    sources, steps, planned, n_shards = plan(files, mapping, max_shard_bytes, expect_keys)

    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        by_shard: dict[int, list[Planned]] = {}
        for p in planned.values():
            by_shard.setdefault(p.shard, []).append(p)
        handles, data_start = {}, {}
        for i, items in by_shard.items():
            fd = os.open(tmp / _shard_name(i, n_shards), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            head = _header_bytes(items, {"format": "pt"})
            os.write(fd, head)
            handles[i], data_start[i] = fd, len(head)
        total, done = sum(p.nbytes for p in planned.values()), 0
        # one buffer for the inputs of any step that transforms data, allocated once
        scratch = torch.empty(max((sum(sources[k].end - sources[k].start for k in s.inputs) for s in steps if s.rename_to is None), default=0), dtype=torch.uint8)
        reader = _Reader()
        try:
            for n, step in enumerate(steps):
                if n + 1 < len(steps) and steps[n + 1].rename_to is None:
                    for key in steps[n + 1].inputs:
                        reader.prefetch(sources[key])
                if step.rename_to is not None:
                    p = planned[step.rename_to]
                    reader.copy(sources[step.inputs[0]], handles[p.shard], data_start[p.shard] + p.offset)
                    done += p.nbytes
                else:
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
                            written += os.pwrite(handles[p.shard], memoryview(data)[written:], data_start[p.shard] + p.offset + written)
                        done += p.nbytes
                    del tensors
                if progress:
                    progress(done, total)
        finally:
            reader.close()
            for fd in handles.values():
                os.close(fd)
        if n_shards > 1:
            index = {
                "metadata": {"total_size": total},
                "weight_map": {p.key: _shard_name(p.shard, n_shards) for p in planned.values()},
            }
            (tmp / f"{WEIGHTS_NAME}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        if config:
            shutil.copy(config, tmp / "config.json")
        for i in range(n_shards):  # what we wrote must read back as valid safetensors
            read_header(tmp / _shard_name(i, n_shards))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "tensors_in": len(sources),
        "tensors_out": len(planned),
        "bytes": total,
        "shards": n_shards,
        "largest_tensor_bytes": max((p.nbytes for p in planned.values()), default=0),
        "out": str(out),
    }


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
    sys.exit(main())
