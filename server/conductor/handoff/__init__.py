"""File-based hand-off: Conductor writes tasks, agents claim them by rename, Conductor judges.

One module per concept: ``tasks`` (writing task files), ``claim`` (the atomic rename),
``watcher`` (file-system events, polling fallback), ``results`` (reading result files
safely), ``snapshot`` (workspace hashes and diffs), ``evidence`` (the verdict),
``rollback`` (undoing violations), ``audit`` (the chained audit log), ``metrics``
(derived from the audit logs), ``timeouts`` (claim and result deadlines), ``coordinator``
(the engine's API), ``state`` (resuming after a restart) and ``agent`` (the reference
executor behind ``conductor agent``).
See docs/handoff.md.
"""

from conductor.handoff.coordinator import HandoffCoordinator, StepOutcome
from conductor.handoff.metrics import derive_metrics
from conductor.handoff.rollback import RollbackReport
from conductor.handoff.tasks import TaskExists, TaskSpec, next_task_id

__all__ = ["HandoffCoordinator", "RollbackReport", "StepOutcome", "TaskExists", "TaskSpec", "derive_metrics",
           "next_task_id"]
