"""The per-plan event journal and everything computed from it.

Every state change of a plan is an event in its hash-chained journal
(:class:`Journal`); :func:`project` folds events into a :class:`PlanState`, :func:`replay`
stops at a given event, :func:`steps_needing_work` tells ``resume`` what is left, and
:func:`explain_step` says why a step exists and what happened to it.
"""

from conductor.journal.events import EVENT_FIELDS, EVENT_TYPES, Event, JournalError, check_event
from conductor.journal.explain import StepExplanation, explain_step
from conductor.journal.journal import Journal
from conductor.journal.projection import (
    DONE_STATES,
    STEP_STATES,
    ForkState,
    PlanState,
    StepState,
    TokenUsage,
    apply,
    project,
    ready_steps,
    replay,
    steps_needing_work,
)

__all__ = [
    "DONE_STATES",
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "STEP_STATES",
    "Event",
    "ForkState",
    "Journal",
    "JournalError",
    "PlanState",
    "StepExplanation",
    "StepState",
    "TokenUsage",
    "apply",
    "check_event",
    "explain_step",
    "project",
    "ready_steps",
    "replay",
    "steps_needing_work",
]
