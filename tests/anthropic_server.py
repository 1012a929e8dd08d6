"""A stand-in for the Anthropic Messages API on 127.0.0.1: plays scripted responses and faults.

Each queued action is either a response body (a Messages API message), or a fault:
{"status": 429, "headers": {"retry-after": "0"}}, {"status": 529}, {"status": 500}, or
{"delay": seconds, "then": action} (answered late, after the client may have given up), or
{"raw": text, "content_type": ...} (the body sent as given: cut-off JSON, HTML, anything).
Requests are recorded for assertions.

Like the real API, a request whose conversation breaks the rules (roles not alternating, a
tool_use not answered by a tool_result in the next message, a tool_result for no tool_use) is
refused with 400, and does not consume a queued action.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def message(content, stop_reason="end_turn", usage=None):
    return {
        "id": "msg_standin", "type": "message", "role": "assistant", "model": "claude-standin",
        "content": content, "stop_reason": stop_reason, "stop_sequence": None,
        "usage": usage or {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def conversation_problem(messages: list[dict]) -> str | None:
    """What the Messages API would reject in this conversation, or None."""
    if not messages or messages[0]["role"] != "user":
        return "the first message must be a user message"
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            return f"messages {i - 1} and {i} have the same role"
        blocks = m["content"] if isinstance(m["content"], list) else []
        asked = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        if asked:
            nxt = messages[i + 1]["content"] if i + 1 < len(messages) else None
            if nxt is None:
                return f"message {i} has tool_use blocks and nothing answers them"
            answered = {b["tool_use_id"] for b in nxt if isinstance(nxt, list) and b.get("type") == "tool_result"} if isinstance(nxt, list) else set()
            if asked != answered:
                return f"tool_use ids {sorted(asked)} in message {i} answered by {sorted(answered)}"
        if m["role"] == "user" and i:
            prev = messages[i - 1]["content"]
            asked_before = {b["id"] for b in prev if b.get("type") == "tool_use"} if isinstance(prev, list) else set()
            stray = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"} - asked_before
            if stray:
                return f"tool_result for unknown tool_use ids {sorted(stray)} in message {i}"
    return None


def tool_results(server: MessagesStandIn) -> dict[str, dict]:
    """tool_use_id -> the tool_result the model was sent, over every accepted request."""
    out = {}
    for req in server.requests:
        for m in req["body"].get("messages", []):
            if isinstance(m["content"], list):
                out.update({b["tool_use_id"]: b for b in m["content"] if b.get("type") == "tool_result"})
    return out


def script_actions(path) -> list[dict]:
    """A scripted session (JSONL of assistant turns) as responses to queue."""
    actions = []
    for line in open(path):
        if line.strip():
            turn = json.loads(line)
            actions.append(message(turn["content"], turn.get("stop_reason", "end_turn"), turn.get("usage")))
    return actions


class MessagesStandIn:
    def __init__(self) -> None:
        self.actions: list[dict] = []
        self.requests: list[dict] = []
        self.rejected: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                standin.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                problem = conversation_problem(body.get("messages", []))
                if problem:
                    standin.rejected.append(problem)
                    action = {"status": 400, "body": {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}}
                else:
                    action = standin.actions.pop(0) if standin.actions else {"status": 500}
                if "delay" in action:  # a slow answer: sleep, then send this action's own response
                    time.sleep(action["delay"])
                    action = action["then"]
                status = action.get("status", 200)
                if "raw" in action:
                    raw = action["raw"].encode("utf-8", "surrogatepass")
                else:
                    payload = action.get("body") or ({"type": "error", "error": {"type": "api_error", "message": f"stand-in {status}"}} if status != 200 else action)
                    raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", action.get("content_type", "application/json"))
                self.send_header("Content-Length", str(len(raw)))
                for k, v in action.get("headers", {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except BrokenPipeError:
                    pass

        return Handler
