"""The backends: the real anthropic SDK against a stand-in Messages API on 127.0.0.1 (faults
included), and scripted turns."""

import json

import pytest
from anthropic_server import MessagesStandIn, message

from agent.llm.backends import AnthropicBackend, BackendError, ScriptedBackend

TOOL_USE = [{"type": "text", "text": "Reading the model."}, {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "model.py"}}]
SYSTEM = [{"type": "text", "text": "You port models."}]
TOOLS = [{"name": "read_file", "description": "Read a file.", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}]


@pytest.fixture
def server(monkeypatch):
    with MessagesStandIn() as s:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", s.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")
        yield s


def complete(backend):
    return backend.complete(SYSTEM, [{"role": "user", "content": "port it"}], TOOLS)


def test_tool_use_turn_and_cached_prefix(server):
    server.actions = [message(TOOL_USE, "tool_use", {"input_tokens": 120, "output_tokens": 30, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 0})]
    turn = complete(AnthropicBackend("claude-standin"))
    assert turn.stop_reason == "tool_use" and turn.content[1]["input"] == {"path": "model.py"}
    assert turn.usage["cache_creation_input_tokens"] == 100
    request = server.requests[0]
    assert request["path"] == "/v1/messages"
    headers = request["headers"]  # the SDK sends the key as x-api-key or as a bearer token
    assert headers.get("x-api-key") == "sk-ant-test-secret" or headers.get("authorization") == "Bearer sk-ant-test-secret"
    assert request["body"]["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert request["body"]["tools"][-1]["cache_control"] == {"type": "ephemeral"}


@pytest.mark.parametrize("fault", [
    {"status": 429, "headers": {"retry-after": "0"}},
    {"status": 529, "headers": {"retry-after": "0"}},
    {"status": 500, "headers": {"retry-after": "0"}},
])
def test_transient_faults_are_retried(server, fault):
    server.actions = [fault, message([{"type": "text", "text": "done"}])]
    turn = complete(AnthropicBackend("claude-standin"))
    assert turn.content[0]["text"] == "done"
    assert len(server.requests) == 2


def test_slow_response_times_out_and_is_retried(server):
    server.actions = [{"delay": 2.0, "then": message([{"type": "text", "text": "late"}])}, message([{"type": "text", "text": "on time"}])]
    turn = complete(AnthropicBackend("claude-standin", timeout=0.5))
    assert turn.content[0]["text"] == "on time"


def test_persistent_failure_is_one_clear_error(server):
    server.actions = [{"status": 529, "headers": {"retry-after": "0"}}] * 3
    with pytest.raises(BackendError, match="529"):
        complete(AnthropicBackend("claude-standin", max_retries=2))
    assert len(server.requests) == 3


def test_missing_key_is_refused(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(BackendError, match="ANTHROPIC_API_KEY"):
        AnthropicBackend("claude-standin")


def test_scripted_backend_replays_turns(tmp_path):
    script = tmp_path / "session.jsonl"
    script.write_text(json.dumps({"content": TOOL_USE, "stop_reason": "tool_use"}) + "\n\n" + json.dumps({"content": [{"type": "text", "text": "bye"}]}) + "\n")
    backend = ScriptedBackend(script)
    assert complete(backend).stop_reason == "tool_use"
    assert complete(backend).content[0]["text"] == "bye"
    with pytest.raises(BackendError, match="no turn 3"):
        complete(backend)
    script.write_text("{not json\n")
    with pytest.raises(BackendError, match=":1: not JSON"):
        ScriptedBackend(script)
