"""Which errors are the machine's or the endpoint's fault (halt the plan resumably), not a step's.

Why a module of its own: the runner, the llm executor and the adapters must agree on it. A full
disk or exhausted quota (``DiskFull``, ``ENOSPC``/``EDQUOT`` anywhere in the cause chain), an
unusable signing key (``TrustError``) and a model endpoint that stayed unreachable or kept
answering 5xx (``LLMUnavailable``), and a sandbox the policy requires but this machine cannot
start (``SandboxUnavailable``) are infrastructure: the plan halts with a one-line reason and
``conductor resume`` continues once the cause is fixed. Everything else that goes wrong in a step
is the step's own failure, repaired and finally failed like any other.
"""

from __future__ import annotations

import errno

from conductor.provenance.trust import TrustError
from conductor.storage.errors import DiskFull

FULL = (errno.ENOSPC, errno.EDQUOT)
INFRASTRUCTURE_NAMES = frozenset({"LLMUnavailable", "SandboxUnavailable"})  # by name: no model or sandbox code here


def infrastructure_failure(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is the machine's or the endpoint's fault."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFull | TrustError) or type(current).__name__ in INFRASTRUCTURE_NAMES:
            return True
        if isinstance(current, OSError) and current.errno in FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def halt_reason(error: BaseException) -> str:
    """One line for a halt: what failed and where (no traceback)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, DiskFull):
            return str(current)
        if isinstance(current, OSError) and current.errno in FULL:
            return str(DiskFull(current.filename or ".", code=current.errno or errno.ENOSPC))
        current = current.__cause__
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["halt_reason", "infrastructure_failure"]
