"""Headers: what the safetensors library refuses is refused here too, with a message naming the
defect, and what it opens is read; pickle checkpoints are never read."""

import json
import pickle
import struct

import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from sandbox.safetensors_header import MAX_HEADER_BYTES, PICKLE_REFUSAL, SafetensorsFormatError, read_header


def raw(path, header: dict, data: bytes = b"", length: int | None = None):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob) if length is None else length) + blob + data)
    return path


def text_file(path, header: str | bytes, data: bytes = b""):
    blob = header.encode() if isinstance(header, str) else header
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)
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
    ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 4, None, "invalid shape"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12, None, "refuses gaps"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, None, "refuses gaps"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 5, None, "refuses trailing bytes"),
    ({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0" * 2, None, "whole number of bytes"),
    ({"a": {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [0, 0]}}, b"", None, "overflow"),
    ({"__metadata__": {"x": 1}}, b"", None, "__metadata__ must map strings to strings"),
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
    with pytest.raises(SafetensorsFormatError, match="not valid UTF-8"):
        read_header(tmp_path / "x.safetensors")


@pytest.mark.parametrize("header, needle", [
    ('{"a\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "lone surrogate"),
    ('{"__metadata__":{"k":"\\udc00"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "lone surrogate"),
    ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "'a' appears twice"),
    ('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', "'dtype' appears twice"),
    ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"n":NaN}', "not valid JSON (NaN is not JSON)"),
    ('{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,4]}}', "invalid shape"),
    ('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', "invalid shape"),
    ('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":' + "[" * 5000 + "]" * 5000 + "}}", "nests deeper"),
])
def test_what_python_json_accepts_but_safetensors_refuses(tmp_path, header, needle):
    path = text_file(tmp_path / "x.safetensors", header, b"\0" * 4)
    with pytest.raises(SafetensorsFormatError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        read_header(path)


# Each case is a header text and the size of the data section after it; the last column says
# whether the real safetensors reader opens it, so the list doubles as a record of its rules.
F32 = '{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}'


def obj(*pairs: tuple[str, str]) -> str:
    """A JSON object written out by hand (keys as JSON source), so duplicates can be made."""
    return "{" + ",".join(f'"{key}":{value}' for key, value in pairs) + "}"


AGREEMENT = [
    ("valid", '{"a":%s}' % (F32 % (0, 4)), 4, True),
    ("empty header", "{}", 0, True),
    ("empty header, trailing byte", "{}", 1, False),
    ("metadata null", '{"__metadata__":null,"a":%s}' % (F32 % (0, 4)), 4, True),
    ("metadata not strings", '{"__metadata__":{"x":1},"a":%s}' % (F32 % (0, 4)), 4, False),
    ("metadata twice", '{"__metadata__":{},"__metadata__":{}}', 0, False),
    ("zero-size tensors", '{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":%s}' % (F32 % (0, 4)), 4, True),
    ("scalar", '{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', 4, True),
    ("extra field", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"note":[1,{"x":null}]}}', 4, True),
    ("missing field", '{"a":{"dtype":"F32","shape":[1]}}', 4, False),
    ("three offsets", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', 4, False),
    ("bool offset", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[false,4]}}', 4, False),
    ("bool dim", '{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}', 4, False),
    ("float dim", '{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', 4, False),
    ("exponent dim", '{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', 4, False),
    ("minus zero dim", '{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,4]}}', 4, False),
    ("negative dim", '{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4, False),
    ("dim over u64", '{"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}', 4, False),
    ("size overflow", '{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}', 0, False),
    ("null entry", '{"a":null}', 0, False),
    ("null shape", '{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}', 4, False),
    ("lower-case dtype", '{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}', 4, False),
    ("unknown dtype", '{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', 1, False),
    ("F4, whole bytes", '{"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}', 2, True),
    ("F4, half a byte", '{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', 2, False),
    ("F6 dtype", '{"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}', 3, True),
    ("F8_E8M0 dtype", '{"a":{"dtype":"F8_E8M0","shape":[4],"data_offsets":[0,4]}}', 4, True),
    ("lone surrogate key", '{"a\\ud800":%s}' % (F32 % (0, 4)), 4, False),
    ("surrogate pair key", '{"a\\ud83d\\ude00":%s}' % (F32 % (0, 4)), 4, True),
    ("escaped NUL key", '{"a\\u0000":%s}' % (F32 % (0, 4)), 4, True),
    ("raw control character", '{"a\n":%s}' % (F32 % (0, 4)), 4, False),
    ("NaN", '{"a":%s,"n":NaN}' % (F32 % (0, 4)), 4, False),
    ("gap between", obj(("a", F32 % (0, 4)), ("b", F32 % (8, 12))), 12, False),
    ("gap at start", '{"a":%s}' % (F32 % (4, 8)), 8, False),
    ("overlap", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":%s}' % (F32 % (4, 8)), 8, False),
    ("same offsets twice", obj(("a", F32 % (0, 4)), ("b", F32 % (0, 4))), 4, False),
    ("out of order in the text", obj(("b", F32 % (4, 8)), ("a", F32 % (0, 4))), 8, True),
    ("trailing bytes", '{"a":%s}' % (F32 % (0, 4)), 5, False),
    ("data short", '{"a":%s}' % (F32 % (0, 4)), 3, False),
    ("reversed offsets", '{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', 4, False),
    ("leading and trailing spaces", '  {"a":%s}    ' % (F32 % (0, 4)), 4, True),
    ("trailing NUL padding", '{"a":%s}\0\0' % (F32 % (0, 4)), 4, False),
    ("byte-order mark", '\ufeff{"a":%s}' % (F32 % (0, 4)), 4, False),
    ("array", "[]", 0, False),
    ("deep nesting in an extra field", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":%s}}' % ("[" * 200 + "]" * 200), 4, False),
]
# Where safetensors silently keeps the last of two entries with one name, we refuse: which
# tensor a name means must not depend on the reader.
STRICTER = [
    ("duplicate tensor name", obj(("a", F32 % (0, 4)), ("a", F32 % (0, 4))), 4),
    ("duplicate metadata key", '{"__metadata__":{"k":"1","k":"2"},"a":%s}' % (F32 % (0, 4)), 4),
]


def _safetensors_opens(path) -> bool:
    try:
        with safe_open(str(path), framework="numpy") as f:
            for key in f.keys():
                f.get_slice(key).get_shape()
        return True
    except SafetensorError:
        return False


def _we_accept(path) -> bool:
    try:
        read_header(path)
        return True
    except SafetensorsFormatError:
        return False


@pytest.mark.parametrize("case, header, data_size, opens", AGREEMENT, ids=[c[0] for c in AGREEMENT])
def test_agrees_with_the_safetensors_reader(tmp_path, case, header, data_size, opens):
    path = text_file(tmp_path / "case.safetensors", header, b"\0" * data_size)
    assert _safetensors_opens(path) is opens  # the record above is still true of the installed library
    assert _we_accept(path) is opens


@pytest.mark.parametrize("case, header, data_size", STRICTER, ids=[c[0] for c in STRICTER])
def test_duplicate_names_are_refused_though_safetensors_keeps_the_last(tmp_path, case, header, data_size):
    path = text_file(tmp_path / "case.safetensors", header, b"\0" * data_size)
    assert _safetensors_opens(path)
    with pytest.raises(SafetensorsFormatError, match="appears twice"):
        read_header(path)


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "model.pth", "model.ckpt", "model.pkl", "MODEL.BIN"])
def test_pickle_suffixes_are_refused_unread(tmp_path, name):
    path = tmp_path / name
    save_file({"a": torch.zeros(1)}, str(path))  # even a safetensors file: the name says pickle
    with pytest.raises(SafetensorsFormatError) as info:
        read_header(path)
    assert str(info.value) == f"{name}: {PICKLE_REFUSAL}"
    assert PICKLE_REFUSAL == "pickle checkpoints are never loaded: convert them to safetensors first"


@pytest.mark.parametrize("how", ["torch zip", "torch legacy", "plain pickle"])
def test_pickles_by_their_first_bytes_are_refused(tmp_path, how):
    path = tmp_path / "weights.safetensors"
    if how == "torch zip":
        torch.save({"a": torch.zeros(2)}, path)
    elif how == "torch legacy":
        torch.save({"a": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps({"a": [0.0, 1.0]}, protocol=4))
    with pytest.raises(SafetensorsFormatError) as info:
        read_header(path)
    assert str(info.value) == f"weights.safetensors: {PICKLE_REFUSAL}"


def test_a_real_header_that_starts_like_a_pickle_is_still_read(tmp_path):
    # Header length 0x0280 = 640: the file starts with bytes 0x80 0x02, a pickle's first two.
    blob = ('{"a":%s}' % (F32 % (0, 4))).encode()
    blob += b" " * (0x280 - len(blob))
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * 4)
    assert path.read_bytes()[:2] == b"\x80\x02"
    assert _safetensors_opens(path)
    assert read_header(path).shapes() == {"a": {"dtype": "F32", "shape": [1]}}
