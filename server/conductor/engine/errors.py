"""The one error hierarchy of the engine: what a door (CLI, language server, MCP) can be refused, with a code.

Every refusal the engine API raises is an :class:`EngineError` with a stable ``code``
(``<area>/<what>``) and a message that says what and where. The CLI maps the class to its
exit code, the language server to an error response, the MCP server to a tool error; none of
them needs to know the domain exceptions underneath (those are translated at the door).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EngineError(Exception):
    """A request the engine cannot carry out; ``str()`` says what and where."""

    code = "engine/refused"
    exit_code = 1  # the CLI's: 1 the command ran and found a problem, 3 the project cannot be used

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), **({"details": self.details} if self.details else {})}


class ProjectError(EngineError):
    """No project here, or one whose files cannot be used (invalid config, unreadable folder)."""

    code = "project/unusable"
    exit_code = 3


class NotAProject(ProjectError):
    code = "project/not-found"


class ConfigInvalid(ProjectError):
    code = "config/invalid"


class PolicyInvalid(ProjectError):
    """The policy cannot be used; ``diagnostics`` say where (file, line, column)."""

    code = "policy/invalid"

    def __init__(self, message: str, *, file: str, diagnostics: list[Any]) -> None:
        super().__init__(message)
        self.file = file
        self.diagnostics = diagnostics

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "file": self.file, "diagnostics": [d.to_json() for d in self.diagnostics]}


class NotFound(EngineError):
    """A plan, fork, step or file the request names does not exist."""

    code = "not-found"


class NoSuchPlan(NotFound):
    code = "plan/not-found"


class NoSuchStep(NotFound):
    code = "step/not-found"


class InvalidRequest(EngineError):
    """The request itself is malformed (an empty goal, an unknown decision …)."""

    code = "request/invalid"


class Conflict(EngineError):
    """The request does not fit the current state (a step that is not waiting for approval …)."""

    code = "state/conflict"


class QueueRefused(EngineError):
    """An agent's call the hand-off queue refuses; nothing was changed."""

    code = "queue/refused"


class Unreadable(EngineError):
    """A file that is not read: not a regular file, a symlink under ``.conductor/``, too large."""

    code = "file/unreadable"

    def __init__(self, message: str, *, path: Path | str) -> None:
        super().__init__(message)
        self.path = Path(path)


class PlanFailed(EngineError):
    """The plan ran but could not go on (planning failed, the model is unreachable …)."""

    code = "plan/failed"


class Cancelled(EngineError):
    """The caller cancelled the request (``$/cancelRequest``, Ctrl-C) before it finished."""

    code = "request/cancelled"


class DiskFull(ProjectError):
    """The disk (or the user's quota) is full: nothing was half-written; free space and try again."""

    code = "disk/full"


class PlanLockedError(ProjectError):
    """Another process runs this plan (one writer per plan); the message names it."""

    code = "plan/locked"
