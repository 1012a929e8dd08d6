"""Streaming checkpoint conversion: reference safetensors -> diffusers safetensors, tensor by tensor.

The mapping is a `_weight_mapping.py` module that depends only on torch (docs/weight-mapping.md):

    RENAMES = [("old.", "new."), ...]          # substring renames, applied in order
    DROP = {"key": "why it is not used"}       # reference keys deliberately left out
    HANDLERS = {r"regex": fn}                  # fn(key, tensor) -> {new_key: tensor}  (split, reshape, ...)
    FUSE = {"new_key": (["in1", "in2"], fn)}   # fn(*tensors) -> tensor                 (split -> fused)

Pass 1 runs the mapping on `meta` tensors (shapes and dtypes, no data) to plan every output, its
shard and its byte offsets, and to catch duplicate and missing keys before anything is written.
Pass 2 reads each input from the memory-mapped file, converts it and writes its bytes straight
to the planned place, so peak memory stays near the largest tensor group, not the checkpoint.
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
from safetensors import safe_open

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
    renames: list[tuple[str, str]] = field(default_factory=list)
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
            renames=list(getattr(module, "RENAMES", [])),
            drop=dict(getattr(module, "DROP", {})),
            handlers=[(re.compile(p), fn) for p, fn in getattr(module, "HANDLERS", {}).items()],
            fuse=dict(getattr(module, "FUSE", {})),
        )

    def rename(self, key: str) -> str:
        for old, new in self.renames:
            key = key.replace(old, new)
        return key


@dataclass
class Source:
    key: str
    file: Path
    dtype: str
    shape: list[int]


@dataclass
class Step:
    """One unit of work: some input keys -> some outputs."""

    inputs: list[str]
    run: Callable[..., dict[str, torch.Tensor]]


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
            sources[key] = Source(key, f, info.dtype, info.shape)
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
            steps.append(Step([key], lambda t, _k=key: {mapping.rename(_k): t}))
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
            fh = open(tmp / _shard_name(i, n_shards), "wb")
            head = _header_bytes(items, {"format": "pt"})
            fh.write(head)
            handles[i], data_start[i] = fh, len(head)
        total, done = sum(p.nbytes for p in planned.values()), 0
        open_files: dict[Path, object] = {}
        try:
            for step in steps:
                tensors = []
                for key in step.inputs:
                    src = sources[key]
                    if src.file not in open_files:
                        open_files[src.file] = safe_open(str(src.file), framework="pt")
                    tensors.append(open_files[src.file].get_tensor(key))
                for key, t in step.run(*tensors).items():
                    p = planned[key]
                    fh = handles[p.shard]
                    if fh.tell() != data_start[p.shard] + p.offset:  # outputs arrive in planned order
                        fh.seek(data_start[p.shard] + p.offset)
                    fh.write(t.detach().contiguous().view(-1).view(torch.uint8).numpy())  # no extra copy
                    done += p.nbytes
                    if progress:
                        progress(done, total)
                del tensors
        finally:
            for fh in handles.values():
                fh.close()
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
