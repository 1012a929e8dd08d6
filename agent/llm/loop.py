"""The refinement loop: ask the model, run the tools it calls, answer every call, repeat.

Small on purpose (mini-swe-agent is the model): one conversation, one list of tools, one
trajectory. Parity decides what is kept: `finish` is accepted only when parity passes, every
passing parity after edits commits a green checkpoint, and a session that ends at a limit with
parity failing goes back to the last green checkpoint.

Budgets bind inside a turn too: each answer is checked (agent/llm/answer.py) and capped
(`cap_turn`), every tool that runs code gets at most what is left of the wall time (through
`env.deadline`), and calls left when the time is spent are answered "not run".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from agent.llm.backends import Backend, BackendError
from agent.llm.cost import Usage
from agent.llm.env import FINISH, MIN_CALL_S, RefineEnv
from agent.llm.limits import LoopLimits, StuckDetector, budget_exceeded, cap_turn, truncate_middle
from agent.llm.tools import call_tool
from agent.llm.trajectory import Trajectory, restore, tool_result_message

NUDGE = "Continue with tool calls. When the port is idiomatic and parity passes, call finish(summary)."
CUT_OFF = ("Your reply was cut off by max_tokens inside this call, so it was not run. Send it again, shorter "
           "(several edit_file calls instead of one large write_file).")
OUT_OF_TIME = "not run: the session's wall-time budget (--max-wall) is spent"
INTERRUPTED = ("The run stopped while this call was in progress, so its result was lost; it may or may not have "
               "taken effect. Check the workspace and repeat it if needed.")


@dataclass
class Outcome:
    status: str  # refined | stopped (limit, workspace green) | reverted (limit, parity failing) | paused (API failure)
    reason: str
    summary: str | None
    usage: dict[str, Any]
    checkpoints: list[str]
    final_commit: str
    tried: list[str] = field(default_factory=list)
    parity: str | None = None


def _tried(results: list[dict[str, Any]]) -> list[str]:
    """What the model did, one line per changing or verifying call, for the report."""
    lines = []
    for r in results:
        name, args = r["name"], r.get("input") or {}
        if name in ("write_file", "edit_file"):
            lines.append(f"{name} {args.get('path')}{' (refused)' if r['is_error'] else ''}")
        elif name in ("run_parity", "finish"):
            lines.append(f"{name}: {r['content'].splitlines()[0] if r['content'] else ''}")
    return lines


def _not_run(call: dict[str, Any], why: str) -> dict[str, Any]:
    return {"tool_use_id": call["id"], "name": call["name"], "input": call.get("input"), "content": why,
            "is_error": True, "seconds": 0.0, "not_run": True}


class RefineLoop:
    def __init__(self, backend: Backend, env: RefineEnv, trajectory: Trajectory, limits: LoopLimits, usage: Usage,
                 system: list[dict[str, Any]], task: str, meta: dict[str, Any]):
        self.backend, self.env, self.trajectory, self.limits, self.usage = backend, env, trajectory, limits, usage
        self.tools = env.tools()
        self.tool_specs = [t.spec() for t in (*self.tools.values(), FINISH)]
        self.system, self.task, self.meta = system, task, meta
        self.stuck = StuckDetector(limits)
        self._last_parity: str | None = None

    def run(self) -> Outcome:
        ended = self._restore()
        if ended is not None:
            return ended
        self.env.deadline = time.monotonic() + self.limits.max_wall_s - self.earlier_seconds
        while True:
            reason = self._budget_spent()
            if reason:
                return self._stop(reason)
            outcome = self._turn()
            if outcome is not None:
                return outcome

    def _budget_spent(self) -> str | None:
        return budget_exceeded(self.limits, self.usage, self.limits.max_wall_s - self.env.time_left())

    def _restore(self) -> Outcome | None:
        """Start the session, or rebuild it from the trajectory; an outcome if it had ended."""
        state = restore(self.trajectory.events())
        if state.end:  # the loop ended before the stage could record it
            return Outcome(**state.end["outcome"])
        if state.start is None:
            self.trajectory.append({"type": "start", "system": self.system, "tools": [t["name"] for t in self.tool_specs],
                                    "limits": self.limits.to_dict(), "base_commit": self.env.head(), **self.meta})
            self.trajectory.append({"type": "user", "content": self.task})
            state = restore(self.trajectory.events())
        else:
            if hasattr(self.backend, "resume_at"):
                self.backend.resume_at(len(state.assistant_turns))
            self.system = state.start["system"]  # the same prefix as before, so the cache still serves it
            self.trajectory.append({"type": "resume", "turns_so_far": len(state.assistant_turns), "pending": [b["id"] for b in state.pending]})
        for turn in state.assistant_turns:
            self.usage.add(turn.get("usage") or {})
        for r in state.results:
            self.stuck.record(r["name"], r.get("input"), r["content"], r["is_error"], r.get("not_run", False))
        self.messages = state.messages
        self.last_green = state.last_green or self.env.head()
        self.checkpoints = state.checkpoints
        self.results = list(state.results)
        self.earlier_seconds = state.seconds
        self.env.on_checkpoint = self._record_checkpoint
        if state.pending:  # killed between the model's answer and our tool results
            self._answer([_not_run(b, INTERRUPTED) for b in state.pending], interrupted=True)
        elif self.messages and self.messages[-1]["role"] == "assistant":
            self._say(NUDGE)
        return None

    def _turn(self) -> Outcome | None:
        """One model call and the answers to every tool it called; an outcome when the session ends."""
        t0 = time.monotonic()
        try:
            turn = self.backend.complete(self.system, self.messages, self.tool_specs, time_left=self.env.time_left())
        except BackendError as exc:  # not an end: the conversation is intact and a resume continues it
            self.trajectory.append({"type": "paused", "reason": str(exc), "seconds": round(time.monotonic() - t0, 3)})
            spent = self._budget_spent()
            if spent:  # the wait used up the session's time: that is the limit, not a pause
                return self._stop(spent)
            return Outcome("paused", str(exc), None, self.usage.summary(), self.checkpoints, self.env.head(), _tried(self.results))
        cost = self.usage.add(turn.usage)
        content, refused = cap_turn(turn.content, self.limits)
        self.trajectory.append({"type": "assistant", "turn": self.usage.turns, "content": content, "stop_reason": turn.stop_reason,
                                "usage": turn.usage, "cost": round(cost, 6), "seconds": round(time.monotonic() - t0, 3)})
        if content:
            self.messages.append({"role": "assistant", "content": content})
        calls = [b for b in content if b.get("type") == "tool_use"]
        if not calls:
            if turn.content:
                self._say(NUDGE if turn.stop_reason != "max_tokens" else "Your reply was cut off by max_tokens. " + NUDGE)
            return None
        finished, results = None, []
        for call in calls:
            if finished is not None:
                results.append(_not_run(call, "not run: the session finished"))
            elif call["id"] in refused:
                results.append(_not_run(call, refused[call["id"]]))
            elif self.env.time_left() <= 0:
                results.append(_not_run(call, OUT_OF_TIME))
            else:
                t1 = time.monotonic()
                text, is_error, finished = self._call(call, cut_off=turn.stop_reason == "max_tokens" and call is content[-1])
                results.append({"tool_use_id": call["id"], "name": call["name"], "input": call.get("input"),
                                "content": truncate_middle(text, self.limits.result_chars), "is_error": is_error,
                                "seconds": round(time.monotonic() - t1, 3)})
        stop = self._answer(results)
        if finished is not None:
            return self._end(Outcome("refined", "the model called finish and parity passed", finished, self.usage.summary(),
                                     self.checkpoints, self.env.head(), _tried(self.results), self._last_parity))
        stop = self._budget_spent() or stop  # a spent budget is the reason, even if the model also erred
        return self._stop(stop) if stop else None

    def _call(self, call: dict[str, Any], cut_off: bool) -> tuple[str, bool, str | None]:
        """(result text, is_error, the finish summary when the session is accepted as finished)."""
        if cut_off:
            return CUT_OFF, True, None
        if call["name"] == "finish":
            arguments = call.get("input")
            if not isinstance(arguments, dict) or not isinstance(arguments.get("summary"), str) or set(arguments) != {"summary"}:
                return "finish takes exactly one argument, summary (a string)", True, None
            return self._finish(arguments["summary"])
        text, is_error = call_tool(self.tools, call["name"], call.get("input"))
        return text, is_error, None

    def _say(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})
        self.trajectory.append({"type": "user", "content": text})

    def _answer(self, results: list[dict[str, Any]], interrupted: bool = False) -> str | None:
        self.messages.append(tool_result_message(results))
        self.trajectory.append({"type": "tool_results", "results": results, "interrupted": interrupted,
                                "seconds": round(sum(r["seconds"] for r in results), 3)})
        self.results += results
        stop = None
        for r in results:
            stop = self.stuck.record(r["name"], r["input"], r["content"], r["is_error"], r.get("not_run", False)) or stop
        return stop

    def _finish(self, summary: str) -> tuple[str, bool, str | None]:
        if self.env.time_left() < MIN_CALL_S:
            return f"finish {OUT_OF_TIME}; parity is checked once more as the session ends", True, None
        verdict = self.env.parity(timeout_s=self.env.time_left())
        self._last_parity = verdict.text.splitlines()[0]
        if not verdict.passed:
            return f"finish refused, parity must pass first.\n{verdict.text}", True, None
        self.env.checkpoint(f"Refine: {summary.splitlines()[0][:72] if summary.strip() else 'refinement'}\n\n{summary}")
        return f"{verdict.text}\nconvention checks:\n{self.env.checks_text()}", False, summary

    def _record_checkpoint(self, sha: str, message: str) -> None:
        self.last_green = sha
        self.checkpoints.append(sha)
        self.trajectory.append({"type": "checkpoint", "commit": sha, "message": message.splitlines()[0]})

    def _stop(self, reason: str) -> Outcome:
        """A limit was reached: keep the work if parity passes, else go back to the last green checkpoint."""
        status, parity = "stopped", None
        if self.env.dirty() or self.env.head() != self.last_green:
            verdict = self.env.parity()
            parity = verdict.text.splitlines()[0]
            if verdict.passed:
                self.env.checkpoint(f"Refine: green checkpoint at the {reason}")
            else:
                self.env.revert(self.last_green)
                status = "reverted"
        return self._end(Outcome(status, reason, None, self.usage.summary(), self.checkpoints, self.env.head(), _tried(self.results), parity))

    def _end(self, outcome: Outcome) -> Outcome:
        self.trajectory.append({"type": "end", "outcome": outcome.__dict__})
        return outcome
