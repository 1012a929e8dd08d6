"""The loop's parts on their own: cost, budgets, the stuck detector, truncation, trajectory
restore after a kill, and redaction."""

import json

import pytest

from agent.errors import IntegrateError
from agent.llm.answer import MalformedAnswer, parse_answer, parse_json
from agent.llm.cost import Usage, load_prices, prices_for, turn_cost
from agent.llm.limits import LoopLimits, StuckDetector, budget_exceeded, cap_turn, truncate_middle
from agent.llm.trajectory import Trajectory, restore
from agent.redact import redact, redact_text

PRICES = {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30}


def test_turn_cost_prices_cache_reads_and_writes_apart():
    usage = {"input_tokens": 1000, "output_tokens": 200, "cache_creation_input_tokens": 4000, "cache_read_input_tokens": 10000}
    assert turn_cost(usage, PRICES) == pytest.approx((1000 * 3 + 200 * 15 + 4000 * 3.75 + 10000 * 0.3) / 1e6)


def test_usage_totals_and_cache_hit_ratio():
    u = Usage(PRICES)
    u.add({"input_tokens": 100, "cache_creation_input_tokens": 900, "output_tokens": 10})
    u.add({"input_tokens": 50, "cache_read_input_tokens": 950, "output_tokens": 20})
    assert u.turns == 2 and u.total_tokens == 2030
    assert u.cache_hit_ratio == pytest.approx(950 / 2000)
    assert u.summary()["dollars"] == pytest.approx((150 * 3 + 30 * 15 + 900 * 3.75 + 950 * 0.3) / 1e6)


def test_price_table_file_adds_models_and_rejects_bad_entries(tmp_path):
    good = tmp_path / "p.json"
    good.write_text(json.dumps({"my-model": {"input": 1, "output": 2, "cache_write": 1.25, "cache_read": 0.1}}))
    assert prices_for(load_prices(good), "my-model")["output"] == 2.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"my-model": {"input": 1}}))
    with pytest.raises(IntegrateError, match="needs numbers"):
        load_prices(bad)
    with pytest.raises(IntegrateError, match="no prices for model"):
        prices_for(load_prices(None), "unknown-model")


def test_budgets_stop_in_the_order_checked():
    limits = LoopLimits(max_turns=3, max_tokens=1000, max_dollars=0.01, max_wall_s=60)
    u = Usage(PRICES)
    assert budget_exceeded(limits, u, 0) is None
    assert "wall-time" in budget_exceeded(limits, u, 61)
    u.add({"input_tokens": 10, "output_tokens": 1000})  # $0.015
    assert "token limit" in budget_exceeded(limits, u, 0)
    assert "cost limit" in budget_exceeded(LoopLimits(max_dollars=0.01), u, 0)
    u.add({})
    u.add({})
    assert "turn limit (3 turns)" in budget_exceeded(limits, u, 0)


def test_stuck_detector_counts_errors_in_a_row_and_repeats_without_change():
    d = StuckDetector(LoopLimits(max_tool_errors=3, max_repeats=3))
    assert d.record("read_file", {"path": "a"}, "no such file", True) is None
    assert d.record("read_file", {"path": "b"}, "text", False) is None  # a success resets the error count
    assert d.record("x", {}, "e1", True) is None and d.record("x", {}, "e2", True) is None
    assert "3 tool errors in a row" in d.record("x", {}, "e3", True)
    d = StuckDetector(LoopLimits(max_tool_errors=2))
    assert d.record("x", {}, "e1", True) is None
    assert d.record("finish", {"summary": "s"}, "finish refused, parity FAILED", True) is None  # a verdict, not an error
    assert d.errors_in_a_row == 0

    d = StuckDetector(LoopLimits(max_repeats=3))
    for _ in range(2):
        assert d.record("run_parity", {}, "parity FAILED", False) is None
    assert d.record("write_file", {"path": "m.py", "content": "x"}, "wrote", False) is None  # the workspace changed
    assert d.record("run_parity", {}, "parity FAILED", False) is None
    assert d.record("run_parity", {}, "parity FAILED", False) is None
    assert "repeated call: run_parity" in d.record("run_parity", {}, "parity FAILED", False)


def test_truncate_keeps_head_and_tail():
    text = "HEAD" + "x" * 10_000 + "TAIL"
    cut = truncate_middle(text, 300)
    assert cut.startswith("HEAD") and cut.endswith("TAIL") and "characters cut" in cut and len(cut) < 400
    assert truncate_middle("short", 300) == "short"


def test_restore_finds_the_unanswered_tool_use(tmp_path):
    t = Trajectory(tmp_path / "t.jsonl")
    t.append({"type": "start", "system": [], "base_commit": "abc"})
    t.append({"type": "user", "content": "go"})
    t.append({"type": "assistant", "turn": 1, "content": [{"type": "tool_use", "id": "t1", "name": "read_file", "input": {}}], "usage": {}, "seconds": 1.5})
    with open(t.path, "a") as f:
        f.write('{"type": "tool_res')  # a line cut by the kill
    state = restore(t.events())
    assert [b["id"] for b in state.pending] == ["t1"]
    assert state.last_green == "abc" and state.seconds == 1.5
    assert [m["role"] for m in state.messages] == ["user", "assistant"]


def test_redaction_of_env_secrets_and_token_shapes(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-very-secret-1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # not a secret: kept
    text = "key tok-very-secret-1, sk-ant-api03-abcdefghijkl, hf_abcdefghijklmnopqrstu at http://127.0.0.1:9"
    assert redact_text(text) == "key [redacted], [redacted], [redacted] at http://127.0.0.1:9"
    assert redact({"a": [text], "n": 3})["a"][0].count("[redacted]") == 3


def test_trajectory_never_writes_the_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "plainsecretvalue42")
    t = Trajectory(tmp_path / "t.jsonl")
    t.append({"type": "tool_results", "results": [{"content": "env: ANTHROPIC_API_KEY=plainsecretvalue42"}]})
    assert "plainsecretvalue42" not in t.path.read_text()


def _msg(content, stop="end_turn", **extra):
    return {"type": "message", "role": "assistant", "content": content, "stop_reason": stop, **extra}


def test_parse_answer_accepts_what_the_api_sends_and_cleans_strings():
    blocks, stop, usage = parse_answer(_msg([{"type": "text", "text": "a\ud800"}, {"type": "tool_use", "id": "toolu_1", "name": "read_file",
                                                                                    "input": {"path": "x\udfff.py"}}], "tool_use",
                                            usage={"input_tokens": 3, "output_tokens": 2, "service_tier": "standard", "x": True}))
    assert stop == "tool_use" and blocks[0]["text"] == "a\ufffd" and blocks[1]["input"]["path"] == "x\ufffd.py"
    assert usage == {"input_tokens": 3, "output_tokens": 2}
    json.dumps(blocks).encode("utf-8")  # sendable
    assert parse_answer({"content": [], "stop_reason": "end_turn"}, envelope=False)[0] == []


@pytest.mark.parametrize("data, why", [
    (None, "JSON NoneType"),
    ({"content": []}, "not an assistant message"),
    (_msg(None), "no content list"),
    (_msg(["text"]), "not an object with a type"),
    (_msg([{"type": "text"}]), "no text string"),
    (_msg([{"type": "image", "source": {}}]), "does not handle"),
    (_msg([{"type": "tool_use", "id": "t 1", "name": "x", "input": {}}], "tool_use"), "id the API would refuse"),
    (_msg([{"type": "tool_use", "id": "t1", "name": "", "input": {}}], "tool_use"), "name of 0 characters"),
    (_msg([{"type": "tool_use", "id": "t1", "name": "x" * 129, "input": {}}], "tool_use"), "name of 129"),
    (_msg([], None), "stop_reason 'None'"),
    (_msg([], "refusal"), "declined"),
    (_msg([], usage=[1]), "usage is not an object"),
])
def test_parse_answer_refuses_malformed_answers(data, why):
    with pytest.raises(MalformedAnswer, match=why):
        parse_answer(data)
    with pytest.raises(MalformedAnswer, match="not valid JSON"):
        parse_json(b'{"type": "mess')


def test_cap_turn_refuses_calls_past_the_caps_and_keeps_oversized_input_out():
    limits = LoopLimits(max_calls_per_turn=3, max_turn_input_bytes=1000)
    calls = [{"type": "tool_use", "id": f"t{i}", "name": "read_file", "input": {"path": f"{i}.py"}} for i in range(5)]
    kept, refused = cap_turn([{"type": "text", "text": "hi"}, *calls], limits)
    assert kept[1:] == calls and set(refused) == {"t3", "t4"} and "at most 3" in refused["t3"]
    big = {"type": "tool_use", "id": "big", "name": "write_file", "input": {"path": "a.py", "content": "x" * 5000}}
    kept, refused = cap_turn([calls[0], big, calls[1]], limits)
    assert set(refused) == {"big", "t1"} and "more than 1,000 bytes" in refused["big"]
    assert kept[1]["input"]["path"] == "a.py" and "5,000 characters omitted" in kept[1]["input"]["content"]
    assert kept[0] is calls[0]


def test_calls_the_loop_declined_are_not_the_models_errors():
    d = StuckDetector(LoopLimits(max_tool_errors=2))
    for _ in range(5):
        assert d.record("read_file", {"path": "a"}, "not run: at most 20 tool calls are run per turn", True, not_run=True) is None
    assert d.errors_in_a_row == 0
