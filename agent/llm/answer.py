"""A model's answer, checked before the loop trusts any of it.

Whatever comes back (cut-off JSON, an object that is not a message, missing or mistyped
fields, duplicate tool ids, a stop reason the loop does not know) is refused as a whole with a
one-line `MalformedAnswer`: the loop then pauses (exit 2) with the conversation as it was, so a
resume asks again. Nothing malformed ever enters the saved conversation, which would poison
every later request.

Strings are made safe to send back: a lone surrogate (valid in JSON, not in UTF-8) becomes
U+FFFD, so the next request can always be encoded.
"""

from __future__ import annotations

import json
import re
from typing import Any

STOP_REASONS = {"end_turn", "tool_use", "max_tokens", "stop_sequence"}
TOOL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_NAME_CHARS = 128
BLOCK_FIELDS: dict[str, dict[str, type]] = {  # the block types the loop can send back, with their required fields
    "text": {"text": str},
    "tool_use": {"id": str, "name": str},
    "thinking": {"thinking": str, "signature": str},
    "redacted_thinking": {"data": str},
}


class MalformedAnswer(ValueError):
    """The API's answer cannot be used; the message says what is wrong."""


def _clean(value: Any) -> Any:
    """A JSON value with every lone surrogate replaced (keys too)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _block(block: Any, n: int, ids: set[str]) -> dict[str, Any]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise MalformedAnswer(f"content block {n} is not an object with a type")
    kind = block["type"]
    fields = BLOCK_FIELDS.get(kind)
    if fields is None:
        raise MalformedAnswer(f"content block {n} has a type the loop does not handle: {kind[:40]!r}")
    for name, typ in fields.items():
        if not isinstance(block.get(name), typ):
            raise MalformedAnswer(f"{kind} block {n} has no {name} string")
    if kind == "tool_use":
        if "input" not in block:
            raise MalformedAnswer(f"tool_use block {n} has no input")
        if not TOOL_ID.fullmatch(block["id"]):
            raise MalformedAnswer(f"tool_use block {n} has an id the API would refuse: {block['id'][:40]!r}")
        if block["id"] in ids:
            raise MalformedAnswer(f"tool_use id {block['id']} appears twice")
        if not 0 < len(block["name"]) <= MAX_NAME_CHARS:
            raise MalformedAnswer(f"tool_use block {n} has a name of {len(block['name'])} characters")
        ids.add(block["id"])
    return _clean(block)


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {}
    if not isinstance(usage, dict):
        raise MalformedAnswer("usage is not an object")
    out = {}
    for k, v in usage.items():
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 0:
                raise MalformedAnswer(f"usage {k} is negative")
            out[k] = v
    return out


def parse_answer(data: Any, envelope: bool = True) -> tuple[list[dict[str, Any]], str, dict[str, int]]:
    """(content blocks, stop reason, usage) of one answer, or MalformedAnswer. `envelope` also
    requires the message's own fields (type "message", role "assistant"), as the API sends them."""
    if not isinstance(data, dict):
        raise MalformedAnswer(f"the answer is a JSON {type(data).__name__}, not a message object")
    if envelope and (data.get("type") != "message" or data.get("role") != "assistant"):
        kind = data.get("type")
        detail = f" ({data['error'].get('message', '')[:200]})" if kind == "error" and isinstance(data.get("error"), dict) else ""
        raise MalformedAnswer(f"the answer is not an assistant message (type {str(kind)[:40]!r}){detail}")
    content = data.get("content")
    if not isinstance(content, list):
        raise MalformedAnswer("the answer has no content list")
    ids: set[str] = set()
    blocks = [_block(b, n, ids) for n, b in enumerate(content)]
    stop = data.get("stop_reason")
    if stop not in STOP_REASONS:
        reason = "the model declined to continue" if stop == "refusal" else "a stop reason the loop does not handle"
        raise MalformedAnswer(f"{reason}: stop_reason {str(stop)[:40]!r}")
    return blocks, stop, _usage(data.get("usage"))


def parse_json(raw: bytes) -> Any:
    """The answer's body as JSON, or MalformedAnswer (cut off, not JSON, not UTF-8)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedAnswer(f"the answer is not valid JSON ({len(raw):,} bytes: {str(exc)[:120]})") from None
