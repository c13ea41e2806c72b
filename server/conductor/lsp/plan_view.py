"""``conductor/plans``: what the editor shows of each plan, as the engine API gives it.

The editor's tree, status bar and waiting notification need more than a step's bare state:
whether a step waits for an *agent* or for a person's *approval* and since when, which step of
a plan is the one to act on, and a fork's planning task. All of that is the engine API's plan
view (``api.status``: the journal's one projection plus where each step's files are) — the
same the CLI prints and ``conductor/stepChanged`` carries — plus each project's readiness
(``api.readiness``: its mode, and whether the model's API key is present, never the key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor.engine import api
    from conductor.lsp.server import ConductorServer
else:  # the engine API loads on first use (see conductor.lsp.lazy_api)
    from conductor.lsp.lazy_api import api

PLANS_REQUEST = "conductor/plans"


def plans_view(ls: ConductorServer) -> dict[str, Any]:
    """The ``conductor/plans`` answer: every plan of every project folder, plus readiness (blocking)."""
    plans: list[dict[str, Any]] = []
    projects = []
    for root in ls.project_roots():
        try:
            plans.extend(plan.to_json() for plan in api.status(root).plans)
        except api.NotAProject:
            continue
        projects.append(api.readiness(root, ls.settings.mode).to_json())
    return {"plans": plans, "projects": projects}
