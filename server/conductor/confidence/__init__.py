"""Pre-execution confidence for a step, from named and weighted factors (see :mod:`.scoring`)."""

from conductor.confidence.scoring import (
    DEFAULT_APPROVAL_BELOW,
    DEFAULT_CAUTION_BELOW,
    DEFAULT_WEIGHTS,
    NEUTRAL_PRIOR,
    StepToScore,
    level_for,
    score_step,
)

__all__ = [
    "DEFAULT_APPROVAL_BELOW",
    "DEFAULT_CAUTION_BELOW",
    "DEFAULT_WEIGHTS",
    "NEUTRAL_PRIOR",
    "StepToScore",
    "level_for",
    "score_step",
]
