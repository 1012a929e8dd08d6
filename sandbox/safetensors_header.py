"""Read and validate a safetensors header without touching the tensor bytes.

Inventories of multi-GB checkpoints need only names, shapes and dtypes; a malformed file must be
rejected with a message that names the problem before any tensor is read. The rules are the
ones the safetensors library itself applies when it opens a file (its Rust `read_metadata` and
`Metadata::validate`, version 0.8), so what passes here also opens there; where it keeps the
last of two duplicate names silently we refuse instead. Pickle checkpoints are never read.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

# The format's own limit on the JSON header (safetensors rejects larger headers).
MAX_HEADER_BYTES = 100_000_000
MAX_USIZE = 2**64 - 1  # shapes and offsets are u64 (usize) in the reader
# Real headers nest 3 deep. safetensors (serde_json) refuses more than 128 levels, Python's json
# only fails at its recursion limit: we refuse beyond 64, a little stricter than safetensors.
MAX_DEPTH = 64

# Bits per element of every dtype safetensors 0.8 knows.
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

PICKLE_REFUSAL = "pickle checkpoints are never loaded: convert them to safetensors first"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class SafetensorsFormatError(ValueError):
    """A file that is not a well-formed safetensors file; the message names the problem."""


class PickleRefused(SafetensorsFormatError):
    """A pickle (or torch zip) checkpoint: loading one runs code, so it is never loaded."""


@dataclass
class TensorInfo:
    dtype: str
    shape: list[int]
    offsets: tuple[int, int]  # relative to the start of the data section

    @property
    def nbytes(self) -> int:
        return self.offsets[1] - self.offsets[0]


@dataclass
class Header:
    path: Path
    header_len: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def data_start(self) -> int:
        return 8 + self.header_len

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def summary(self) -> dict:
        return {
            "file": self.path.name,
            "tensors": len(self.tensors),
            "bytes": self.total_bytes,
            "dtypes": sorted({t.dtype for t in self.tensors.values()}),
            "largest_tensor_bytes": max((t.nbytes for t in self.tensors.values()), default=0),
        }

    def shapes(self) -> dict[str, dict]:
        return {k: {"dtype": t.dtype, "shape": t.shape} for k, t in sorted(self.tensors.items())}


def _looks_pickled(first: bytes) -> bool:
    """A zip archive (torch.save's format) or a pickle of protocol 2 or later."""
    return first.startswith(b"PK\x03\x04") or (len(first) >= 2 and first[0] == 0x80 and 2 <= first[1] <= 5)


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a tensor name in a safetensors header, or None."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a string"
    if name == "__metadata__":
        return "is the header's reserved metadata field"
    if not _is_unicode(name):
        return "holds a lone surrogate (\\ud800-\\udfff): not valid Unicode, safetensors refuses it"
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # only lone surrogates fail: json pairs escaped surrogate pairs itself
        return False
    return True


def _is_dim(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_USIZE  # bool is not int here, unlike isinstance


class _Duplicate(Exception):
    pass


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(key)
        result[key] = value
    return result


def _parse_int(text: str) -> int | float:
    # serde_json reads "-0" as a float, which no shape or offset accepts; Python would say 0.
    return -0.0 if text == "-0" else int(text)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _depth(value: object, limit: int) -> int:
    if limit < 0:
        return 1
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    return 0


def _strings(value: object):
    """Every key and string value in a parsed header."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _parse(name: str, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SafetensorsFormatError(f"{name}: header is not valid UTF-8") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_pairs, parse_int=_parse_int, parse_constant=_refuse_constant)
    except _Duplicate as exc:
        raise SafetensorsFormatError(f"{name}: key {exc.args[0]!r} appears twice in the header") from None
    except RecursionError:
        raise SafetensorsFormatError(f"{name}: header nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError and the constants above
        raise SafetensorsFormatError(f"{name}: header is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(parsed, dict):
        raise SafetensorsFormatError(f"{name}: header is not a JSON object")
    if _depth(parsed, MAX_DEPTH) > MAX_DEPTH:
        raise SafetensorsFormatError(f"{name}: header nests deeper than {MAX_DEPTH} levels")
    bad = next((s for s in _strings(parsed) if not _is_unicode(s)), None)
    if bad is not None:
        raise SafetensorsFormatError(
            f"{name}: header string {bad.encode('utf-8', 'backslashreplace').decode()[:80]!r} holds a lone surrogate "
            "(\\ud800-\\udfff): not valid Unicode, safetensors refuses it"
        )
    return parsed


def _tensor_info(name: str, key: str, info: object) -> TensorInfo:
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise SafetensorsFormatError(f"{name}: entry {key!r} lacks dtype, shape or data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise SafetensorsFormatError(f"{name}: tensor {key!r} has unknown dtype {dtype!r}")
    if not (isinstance(shape, list) and all(_is_dim(d) for d in shape)):
        raise SafetensorsFormatError(f"{name}: tensor {key!r} has an invalid shape {shape!r}: dimensions are integers from 0 to 2**64-1")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_dim(o) for o in offsets)):
        raise SafetensorsFormatError(f"{name}: tensor {key!r} has invalid data_offsets {offsets!r}: two integers from 0 to 2**64-1")
    begin, end = offsets
    if begin > end:
        raise SafetensorsFormatError(f"{name}: tensor {key!r} has invalid data_offsets {offsets!r}: the end is before the start")
    bits = DTYPE_BITS[dtype]
    for d in shape:
        bits *= d
    if bits > MAX_USIZE:
        raise SafetensorsFormatError(f"{name}: tensor {key!r}: {dtype} {shape} is too large to address (overflow)")
    if bits % 8:
        raise SafetensorsFormatError(f"{name}: tensor {key!r}: {dtype} {shape} does not fill a whole number of bytes")
    if end - begin != bits // 8:
        raise SafetensorsFormatError(f"{name}: tensor {key!r} spans {end - begin} bytes but {dtype} {shape} needs {bits // 8}")
    return TensorInfo(dtype, list(shape), (begin, end))


def read_header(path: str | Path) -> Header:
    """Parse and validate `path`'s header; raise SafetensorsFormatError naming the defect."""
    path = Path(path)
    name = path.name
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise PickleRefused(f"{name}: {PICKLE_REFUSAL}")
    size = path.stat().st_size
    with path.open("rb") as fh:
        first = fh.read(8)
        if size < 8:
            raise SafetensorsFormatError(f"{name}: file is {size} bytes, too short to hold a safetensors header")
        (header_len,) = struct.unpack("<Q", first)
        if (header_len > MAX_HEADER_BYTES or 8 + header_len > size) and _looks_pickled(first):
            raise PickleRefused(f"{name}: {PICKLE_REFUSAL}")
        if header_len > MAX_HEADER_BYTES:
            raise SafetensorsFormatError(
                f"{name}: header length {header_len} is over the format's limit of {MAX_HEADER_BYTES} bytes"
            )
        if 8 + header_len > size:
            raise SafetensorsFormatError(
                f"{name}: header length {header_len} is beyond the end of the file ({size} bytes): truncated or not safetensors"
            )
        raw = fh.read(header_len)
    parsed = _parse(name, raw)

    metadata = parsed.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsFormatError(f"{name}: __metadata__ must map strings to strings")

    data_size = size - 8 - header_len
    tensors = {key: _tensor_info(name, key, info) for key, info in parsed.items()}
    for key, t in tensors.items():
        if t.offsets[1] > data_size:
            raise SafetensorsFormatError(
                f"{name}: tensor {key!r} ends at byte {t.offsets[1]} but the data section holds {data_size} bytes: truncated file or out-of-range offsets"
            )
    # Sorted by offsets, the tensors must tile the data section exactly: from byte 0, each one
    # where the one before ended, the last at the end of the file.
    end, previous = 0, None
    for key, t in sorted(tensors.items(), key=lambda kv: kv[1].offsets):
        begin = t.offsets[0]
        if begin < end:
            raise SafetensorsFormatError(f"{name}: tensors {previous!r} and {key!r} have overlapping data_offsets")
        if begin > end:
            raise SafetensorsFormatError(
                f"{name}: tensor {key!r} starts at byte {begin} of the data section but the tensors before it end at {end}: "
                "safetensors refuses gaps"
            )
        end, previous = t.offsets[1], key
    if end != data_size:
        raise SafetensorsFormatError(
            f"{name}: {data_size - end} bytes follow the last tensor: safetensors refuses trailing bytes after the data"
        )
    return Header(path=path, header_len=header_len, tensors=tensors, metadata=metadata)
