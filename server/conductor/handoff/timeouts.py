"""When a handed-off step stops waiting: the claim deadline and the result deadline.

Why a module of its own: the two timeouts mean different things and end differently.

* **Result timeout** (``timeout_seconds`` of the task, counted from the claim): a claimed
  task without a valid result by then fails as a timeout: ``task.timeout`` in the audit
  log, files moved to ``failed/``, provenance verdict ``fail`` with ``evidence/timeout``.
  (A result that is present but still invalid at that moment does not save it.)
* **Claim timeout** (by default the same number of seconds, counted from hand-off; the
  engine may pass another value or ``None`` to wait indefinitely): a task nobody claimed
  is reported, not dropped: ``task.unclaimed`` in the audit log, and the task is
  *withdrawn* — renamed from ``pending/`` to ``failed/`` with the same atomic rename agents
  use to claim, so either an agent's late claim or the withdrawal wins, never both. The
  caller gets a failed outcome with ``evidence/unclaimed`` and may hand the step off again.

Deadlines use the monotonic clock; waiting on them never blocks the event loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

TIMEOUT = "evidence/timeout"
UNCLAIMED = "evidence/unclaimed"


@dataclass
class Deadlines:
    handed_off: float
    task_timeout: float
    claim_timeout: float | None
    claimed: float | None = None

    @classmethod
    def start(cls, task_timeout: float, claim_timeout: float | None) -> Deadlines:
        return cls(time.monotonic(), task_timeout, claim_timeout)

    def mark_claimed(self) -> None:
        self.claimed = time.monotonic()

    def deadline(self) -> float | None:
        """The monotonic time the current phase ends (``None``: no deadline)."""
        if self.claimed is not None:
            return self.claimed + self.task_timeout
        if self.claim_timeout is None:
            return None
        return self.handed_off + self.claim_timeout

    def remaining(self) -> float | None:
        end = self.deadline()
        return None if end is None else end - time.monotonic()

    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0
