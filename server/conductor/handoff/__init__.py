"""File-based hand-off: Conductor seals an attempt, writes its task, agents claim it by rename, Conductor judges.

One module per concept: ``tasks`` (writing task files), ``claim`` (the atomic rename),
``watcher`` (file-system events, polling fallback), ``results`` (reading result files
safely), ``tree`` (what an attempt's working copy really changed), ``outside`` (what changed
elsewhere in the project while it ran), ``evidence`` (the verdict), ``audit`` (the chained
audit log), ``metrics`` (derived from the audit logs), ``timeouts`` (claim and result
deadlines), ``coordinator`` (the engine's API: seal, hand off, judge, integrate, record),
``state`` (resuming after a restart) and ``agent`` (the reference executor behind
``conductor agent``). See docs/handoff.md.
"""

from conductor.handoff.coordinator import HandoffCoordinator, StepOutcome
from conductor.handoff.metrics import derive_metrics
from conductor.handoff.tasks import TaskExists, TaskSpec, next_task_id

__all__ = ["HandoffCoordinator", "StepOutcome", "TaskExists", "TaskSpec", "derive_metrics", "next_task_id"]
