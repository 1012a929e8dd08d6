"""Read and validate a safetensors header without touching the tensor bytes.

Inventories of multi-GB checkpoints need only names, shapes and dtypes; a malformed file must be
rejected with a message that names the problem before any tensor is read.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

# The format's own limit on the JSON header (safetensors rejects larger headers).
MAX_HEADER_BYTES = 100_000_000

DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
    "C64": 8,
}


class SafetensorsFormatError(ValueError):
    """A file that is not a well-formed safetensors file; the message names the problem."""


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


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def read_header(path: str | Path) -> Header:
    """Parse and validate `path`'s header; raise SafetensorsFormatError naming the defect."""
    path = Path(path)
    size = path.stat().st_size
    name = path.name
    if size < 8:
        raise SafetensorsFormatError(f"{name}: file is {size} bytes, too short to hold a safetensors header")
    with path.open("rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        if header_len > MAX_HEADER_BYTES:
            raise SafetensorsFormatError(
                f"{name}: header length {header_len} is over the format's limit of {MAX_HEADER_BYTES} bytes"
            )
        if 8 + header_len > size:
            raise SafetensorsFormatError(
                f"{name}: header length {header_len} is beyond the end of the file ({size} bytes): truncated or not safetensors"
            )
        raw = fh.read(header_len)
    try:
        parsed = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsFormatError(f"{name}: header is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(parsed, dict):
        raise SafetensorsFormatError(f"{name}: header is not a JSON object")

    metadata = parsed.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsFormatError(f"{name}: __metadata__ must map strings to strings")

    data_size = size - 8 - header_len
    tensors: dict[str, TensorInfo] = {}
    for key, info in parsed.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise SafetensorsFormatError(f"{name}: entry {key!r} lacks dtype, shape or data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise SafetensorsFormatError(f"{name}: tensor {key!r} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise SafetensorsFormatError(f"{name}: tensor {key!r} has an invalid shape {shape!r}")
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
        ):
            raise SafetensorsFormatError(f"{name}: tensor {key!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise SafetensorsFormatError(f"{name}: tensor {key!r} has invalid data_offsets {offsets!r}")
        if end > data_size:
            raise SafetensorsFormatError(
                f"{name}: tensor {key!r} ends at byte {end} but the data section holds {data_size} bytes: truncated file or out-of-range offsets"
            )
        expected = _numel(shape) * DTYPE_BYTES[dtype]
        if end - begin != expected:
            raise SafetensorsFormatError(
                f"{name}: tensor {key!r} spans {end - begin} bytes but {dtype} {shape} needs {expected}"
            )
        tensors[key] = TensorInfo(dtype, list(shape), (begin, end))

    previous_end, previous_key = 0, None
    for key, info in sorted(tensors.items(), key=lambda kv: kv[1].offsets):
        if info.offsets[0] < previous_end:
            raise SafetensorsFormatError(f"{name}: tensors {previous_key!r} and {key!r} have overlapping data_offsets")
        previous_end, previous_key = max(previous_end, info.offsets[1]), key
    return Header(path=path, header_len=header_len, tensors=tensors, metadata=metadata)
