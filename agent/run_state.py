"""A run is a folder holding run.json: inputs, the stage reached and each stage's result.

Every write is atomic (temp file + rename), so a run killed at any instant leaves a run.json that
`integrate resume` can read; a stage found "running" was interrupted and is done again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import IntegrateError
from sandbox import safe_files

RUN_FILE = "run.json"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def slugify(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text.split("/")[-1].rstrip("/"))
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


@dataclass
class Run:
    dir: Path
    data: dict[str, Any]

    @classmethod
    def create(cls, runs_root: Path, inputs: dict[str, Any], run_id: str | None = None) -> Run:
        base = run_id or f"{slugify(inputs['source'])}-{time.strftime('%Y%m%d-%H%M%S')}"
        runs_root.mkdir(parents=True, exist_ok=True)
        run_dir, n = runs_root / base, 1
        while run_dir.exists():
            n += 1
            run_dir = runs_root / f"{base}-{n}"
        run_dir.mkdir()
        run = cls(run_dir.resolve(), {
            "id": run_dir.name,
            "created": _now(),
            "inputs": inputs,
            "status": "running",
            "stage_reached": None,
            "stages": {},
        })
        run.save()
        return run

    @classmethod
    def load(cls, path: str | os.PathLike) -> Run:
        run_dir = Path(path)
        if run_dir.name == RUN_FILE:
            run_dir = run_dir.parent
        try:
            data = json.loads((run_dir / RUN_FILE).read_text())
        except FileNotFoundError:
            raise IntegrateError(f"not a run folder (no {RUN_FILE}): {run_dir}") from None
        except json.JSONDecodeError as exc:
            raise IntegrateError(f"{run_dir / RUN_FILE} is not valid JSON: {exc}") from None
        return cls(run_dir.resolve(), data)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def inputs(self) -> dict[str, Any]:
        return self.data["inputs"]

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def result(self, stage: str) -> dict[str, Any]:
        """The recorded result of a finished stage; later stages read their inputs from here."""
        entry = self.data["stages"].get(stage)
        if not entry or entry.get("status") != "done":
            raise IntegrateError(f"stage {stage!r} has not finished in run {self.id}")
        return entry["result"]

    def is_done(self, stage: str) -> bool:
        return self.data["stages"].get(stage, {}).get("status") == "done"

    def start_stage(self, stage: str) -> None:
        self.data["stages"][stage] = {"status": "running", "started": _now()}
        self.data["stage_reached"] = stage
        self.save()

    def finish_stage(self, stage: str, result: dict[str, Any], seconds: float) -> None:
        entry = self.data["stages"][stage]
        entry.update(status="done", finished=_now(), seconds=round(seconds, 3), result=result)
        self.save()

    def fail_stage(self, stage: str, message: str, seconds: float) -> None:
        entry = self.data["stages"].setdefault(stage, {})
        entry.update(status="failed", finished=_now(), seconds=round(seconds, 3), error=message)
        self.data["status"] = "failed"
        self.data["error"] = message
        self.save()

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".run-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / RUN_FILE)

    def write_json(self, relative: str, payload: Any) -> Path:
        """Stage folders are sandbox workspaces: never write through a link planted there."""
        safe_files.write_text(self.dir, relative, json.dumps(payload, indent=2, default=str) + "\n")
        return self.path(relative)
