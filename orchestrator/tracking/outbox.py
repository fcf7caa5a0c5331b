"""The ordered, retried queue of a sweep's tracking calls: an unreachable server loses nothing.

An unreachable tracking server never crashes the sweep and loses nothing (``Outbox``): every
tracking call of the Tune callback is an operation in an ordered queue, tried at once and, on a
transient failure (connection refused or reset, timeout, HTTP 5xx/429, a locked sqlite file),
kept with its original timestamp and retried with exponential backoff (1 s doubling to 60 s)
on later calls, in order (a trial's metrics never overtake its run's creation). MLflow's own
HTTP retries are shortened (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2``, 20 s timeout) so an outage
does not stall Tune's event loop. At the end of the sweep the queue is flushed for up to
``XLT_TRACKING_FLUSH_S`` (default 300) seconds; what still cannot be delivered is written to
``<storage>/_xlt/<sweep>/tracking_outbox.json`` and delivered by the next ``xlt-sweep
--resume`` (or the end of this one, if the server is back by then). A request the server
rejects (4xx: a bad value) is not retried; it is counted and reported as dropped. Guarantee:
at-least-once delivery; a metric batch whose response was lost after the server stored it can
appear twice in a metric's history (same step, value and timestamp).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from pathlib import Path

from orchestrator.tracking.runs import SweepTracker

MAX_ATTEMPTS = 5  # failures of one operation while the server answers other requests: rejected
TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED",
                   "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED"}


def transient(e: BaseException) -> bool:
    """A failure worth retrying (server down or overloaded, network, a locked sqlite file), as
    opposed to a request the server rejected (a bad parameter value, a missing run)."""
    from mlflow.exceptions import MlflowException

    if isinstance(e, MlflowException):
        return e.error_code in TRANSIENT_CODES
    return isinstance(e, ConnectionError | TimeoutError) or type(e).__module__.split(".")[0] in (
        "requests", "urllib3", "sqlalchemy", "sqlite3")


class Outbox:
    """Ordered tracking operations for a ``SweepTracker`` that survive an unreachable server.

    Operations are plain JSON-able dicts (``kind``, ``trial``, ``args``, ``t``) so the queue can
    be written to disk and replayed by another process. ``runs`` maps trial ids to MLflow run
    ids as operations create or find them; an operation for a trial whose run is not known
    (a replayed file) finds it by tag.
    """

    def __init__(self, tracker: SweepTracker, spill: str | None = None):
        self.tracker = tracker
        self.spill = spill
        self.pending: deque[dict] = deque()
        self.runs: dict[str, str] = {}
        self.delay, self.retry_at = 1.0, 0.0
        self.first_failure: float | None = None
        self.last_failure: float | None = None
        self.stats = {"delivered_late": 0, "dropped": 0, "max_pending": 0, "outage_s": 0.0}
        self.errors: list[str] = []
        self.save_failed = False
        self.full = False

    def submit(self, kind: str, trial: str | None = None, **args) -> bool:
        """Queue one operation and try to deliver the queue. While anything is pending, the
        queue is also kept on disk (``spill``), so a driver killed during an outage loses
        nothing; the file goes once the queue drains."""
        self.pending.append({"kind": kind, "trial": trial, "args": args, "t": time.time()})
        self.stats["max_pending"] = max(self.stats["max_pending"], len(self.pending))
        delivered = self.flush()
        if self.spill and (self.pending or Path(self.spill).exists()):
            self.save()
        return delivered

    def flush(self, wait_s: float = 0.0) -> bool:
        """Deliver queued operations in order. ``wait_s`` 0: one attempt unless backing off;
        else keep retrying (with backoff) for up to ``wait_s`` seconds. True when empty."""
        deadline = time.monotonic() + wait_s
        while self.pending:
            now = time.monotonic()
            if now < self.retry_at:
                if now >= deadline or self.full:  # a full disk does not empty itself: do not wait
                    return False
                time.sleep(min(self.retry_at, deadline) - now)
                continue
            op = self.pending[0]
            try:
                self._apply(op)
            except Exception as e:  # noqa: BLE001  (classified below; never raised into Tune)
                op["attempts"] = op.get("attempts", 0) + 1
                if not transient(e) or (op["attempts"] >= MAX_ATTEMPTS and self._reachable()):
                    self.pending.popleft()
                    self.stats["dropped"] += 1
                    self.errors.append(f"{op['kind']} {op['trial'] or ''}: {str(e)[:300]}")
                    print(f"[xlt tracking] MLflow rejected {op['kind']} for {op['trial'] or 'the sweep'}: "
                          f"{str(e)[:300]}", file=sys.stderr)
                    continue
                t = time.time()
                self.full = "disk is full" in str(e) or "No space left" in str(e)
                if self.first_failure is None:
                    self.first_failure = t
                    print(f"[xlt tracking] MLflow unreachable ({str(e).splitlines()[0][:200]}); "
                          f"buffering tracking calls and retrying", file=sys.stderr)
                self.last_failure = t
                self.retry_at = time.monotonic() + self.delay
                self.delay = min(60.0, self.delay * 2)
                continue
            self.pending.popleft()
            self.full = False
            if self.last_failure is not None and op["t"] <= self.last_failure:
                self.stats["delivered_late"] += 1
            if self.first_failure is not None:
                self.stats["outage_s"] += time.time() - self.first_failure
                print(f"[xlt tracking] MLflow reachable again; delivering {len(self.pending) + 1} "
                      f"buffered call(s)", file=sys.stderr)
                self.first_failure = None
            self.delay, self.retry_at = 1.0, 0.0
        return True

    def _reachable(self) -> bool:
        """Whether the server answers a cheap read: then an operation that keeps failing with a
        'transient' error is in fact rejected, and must not block the queue."""
        try:
            self.tracker.client.search_experiments(max_results=1)
            return True
        except Exception:  # noqa: BLE001
            return False

    def _run(self, trial: str) -> str:
        if trial not in self.runs:
            self.runs[trial] = self.tracker.trial_run(trial, None, reopen=False)
        return self.runs[trial]

    def _apply(self, op: dict) -> None:
        kind, trial, a, t = op["kind"], op["trial"], op["args"], self.tracker
        if t.parent_id is None and kind != "sweep":  # a replayed queue: re-attach to the parent
            t.start_sweep(a.get("plan") or {}, reopen=False)
        if kind == "sweep":
            t.start_sweep(a["plan"])
        elif kind == "trial":
            self.runs[trial] = t.trial_run(trial, a["config"])
        elif kind == "metrics":
            if not t.log_metrics(self._run(trial), a["rows"], trial, a.get("epoch")):
                self.stats["duplicates_skipped"] = self.stats.get("duplicates_skipped", 0) + 1
        elif kind == "tag":
            t.tag(self._run(trial), a["key"], a["value"])
        elif kind == "artifacts":
            t.log_predictions(self._run(trial), Path(a["folder"]))
        elif kind == "end":
            if a.get("optional") and trial not in self.runs:
                try:
                    self._run(trial)
                except KeyError:  # never started: it has no run to close
                    return
            t.end_trial(self._run(trial), a["status"], reason=a.get("reason"), tags=a.get("tags"),
                        traceback=a.get("traceback"))
        else:
            raise ValueError(f"unknown tracking operation {kind}")

    def save(self) -> str | None:
        """Write what is still queued (and the delivery figures) to ``spill``; None if empty."""
        if not self.spill:
            return None
        path = Path(self.spill)
        if not self.pending:
            path.unlink(missing_ok=True)
            return None
        tmp = path.with_suffix(".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"pending": list(self.pending), "runs": self.runs}, default=float))
            os.replace(tmp, path)
        except OSError as e:  # a full or read-only storage: keep the queue in memory, say so once
            tmp.unlink(missing_ok=True)
            if not self.save_failed:
                print(f"[xlt tracking] cannot keep the tracking queue on disk at {path}: "
                      f"{e.strerror or e}; {len(self.pending)} call(s) held in memory", file=sys.stderr)
            self.save_failed = True
            return None
        self.save_failed = False
        return str(path)

    def load(self) -> int:
        """Queue the operations a previous process could not deliver (oldest first)."""
        if not self.spill or not Path(self.spill).is_file():
            return 0
        saved = json.loads(Path(self.spill).read_text())
        self.pending.extendleft(reversed(saved["pending"]))
        self.runs.update(saved.get("runs", {}))
        return len(saved["pending"])
