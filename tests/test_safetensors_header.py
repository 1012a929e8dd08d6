"""Malformed safetensors headers are rejected with a message naming the defect."""

import json
import struct

import pytest
import torch
from safetensors.torch import save_file

from sandbox.safetensors_header import MAX_HEADER_BYTES, SafetensorsFormatError, read_header


def raw(path, header: dict, data: bytes = b"", length: int | None = None):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob) if length is None else length) + blob + data)
    return path


def test_valid_file(tmp_path):
    save_file({"a": torch.zeros(2, 3), "b": torch.ones(4, dtype=torch.bfloat16)}, str(tmp_path / "ok.safetensors"))
    header = read_header(tmp_path / "ok.safetensors")
    assert header.shapes() == {"a": {"dtype": "F32", "shape": [2, 3]}, "b": {"dtype": "BF16", "shape": [4]}}
    assert header.total_bytes == 24 + 8


@pytest.mark.parametrize("header, data, length, needle", [
    ({}, b"", 10**6, "beyond the end of the file"),
    ({}, b"", MAX_HEADER_BYTES + 1, "over the format's limit"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, None, "truncated"),
    ({"a": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, None, "unknown dtype"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, None, "overlapping"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, None, "needs 12"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, None, "invalid data_offsets"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b"", None, "invalid shape"),
])
def test_malformed(tmp_path, header, data, length, needle):
    path = raw(tmp_path / "bad.safetensors", header, data, length)
    with pytest.raises(SafetensorsFormatError, match=needle):
        read_header(path)


def test_too_short(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"abc")
    with pytest.raises(SafetensorsFormatError, match="too short"):
        read_header(tmp_path / "x.safetensors")


def test_not_json(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{{")
    with pytest.raises(SafetensorsFormatError, match="not valid JSON"):
        read_header(tmp_path / "x.safetensors")
