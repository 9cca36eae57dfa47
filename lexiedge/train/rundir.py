"""The files a training run writes beside its checkpoints (rank 0 only).

    run.json        what ran (model, plugins, versions, world size) and how far it got (status, step, best)
    history.json    one row per evaluation: train loss and metrics, val metrics, lr, samples/s, peak memory
    metrics.jsonl   one JSON line per logged optimizer step and per evaluation, appended as training goes
    final/model.safetensors   the last weights (what the task's checkpoint_state returns)

``profile.yaml`` is written before training by :func:`lexiedge.pipeline.train`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from lexiedge.train.checkpoint import write_json_atomic

RUN_JSON = "run.json"
HISTORY_JSON = "history.json"
METRICS_JSONL = "metrics.jsonl"
FINAL_DIR = "final"
TEST_METRICS_JSON = "test_metrics.json"


def cache_dir() -> Path:
    """Where plugins cache decoded data and features: ``$LEXIEDGE_CACHE`` or ``~/.cache/lexiedge``."""
    override = os.environ.get("LEXIEDGE_CACHE")
    path = Path(override).expanduser() if override else Path.home() / ".cache" / "lexiedge"
    path.mkdir(parents=True, exist_ok=True)
    return path


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def plain(value: Any) -> Any:
    """JSON-safe (and ``weights_only``-safe) copies: numpy and torch scalars become numbers, NaN becomes None."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays/scalars, tensors
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of a metrics dict (what the console line and the progress bar show)."""
    return {key: value for key, value in metrics.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}


class RunFiles:
    """Reads and writes one run directory's bookkeeping files; a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.info: dict[str, Any] = {}
        self.log_lines = 0

    # run.json
    def start(self, info: dict[str, Any], resumed: bool) -> None:
        if not self.enabled:
            return
        previous = self.read_run_json() if resumed else {}
        self.info = {**previous, **info}
        self.info.setdefault("started", now_iso())
        if resumed:
            self.info["resumed"] = [*previous.get("resumed", []), now_iso()]
        self.info.update(status="running", finished=None)
        self.info.pop("error", None)
        self.write_run_json()

    def update(self, **fields: Any) -> None:
        if not self.enabled:
            return
        self.info.update(fields)
        self.write_run_json()

    def finish(self, status: str, **fields: Any) -> None:
        self.update(status=status, finished=now_iso(), **fields)

    def read_run_json(self) -> dict[str, Any]:
        path = self.run_dir / RUN_JSON
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def write_run_json(self) -> None:
        write_json_atomic(self.run_dir / RUN_JSON, plain(self.info))

    # history.json
    def write_history(self, history: list[dict[str, Any]]) -> None:
        if self.enabled:
            write_json_atomic(self.run_dir / HISTORY_JSON, plain(history))

    # metrics.jsonl
    def truncate_log(self, lines: int) -> None:
        """Forget lines logged after the checkpoint a run resumes from (they will be logged again)."""
        self.log_lines = lines
        path = self.run_dir / METRICS_JSONL
        if not self.enabled or not path.is_file():
            return
        kept = path.read_text(encoding="utf-8").splitlines(keepends=True)[:lines]
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)

    def log(self, record: dict[str, Any]) -> None:
        self.log_lines += 1
        if not self.enabled:
            return
        with open(self.run_dir / METRICS_JSONL, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(plain(record)) + "\n")

    def write_json(self, name: str, data: Any) -> Path:
        path = self.run_dir / name
        if self.enabled:
            write_json_atomic(path, plain(data))
        return path
