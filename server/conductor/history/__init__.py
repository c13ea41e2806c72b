"""What Conductor learns from: outcomes of past steps and the repairs that fixed them.

:class:`HistoryStore` wraps ``.conductor/history.db``; confidence asks it how similar steps
went (:meth:`HistoryStore.success_rate`), repair asks it for past fixes
(:meth:`HistoryStore.similar_failures_with_fixes`).
"""

from conductor.history.store import (
    DEFAULT_MIN_SIMILARITY,
    OUTCOMES,
    HistoryError,
    HistoryStore,
    PastFix,
    SimilarStep,
    SuccessRate,
    jaccard,
    tokenize,
)

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "OUTCOMES",
    "HistoryError",
    "HistoryStore",
    "PastFix",
    "SimilarStep",
    "SuccessRate",
    "jaccard",
    "tokenize",
]
