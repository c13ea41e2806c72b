"""Signed heads of the chained logs (``audit.log.head``, ``journal.jsonl.head``).

Why a module of its own: a hash chain shows edits and insertions but not lines cut off its
end — the shorter log is still a valid chain. The head says how many lines the log had and
the digest of the last one, signed with the project key as a DSSE envelope (payload type
:data:`HEAD_PAYLOAD_TYPE`), so ``conductor verify`` detects truncation and names the line
where the log now ends. ``storage.ChainLog`` writes it after each group commit through the
signer made here (storage itself knows nothing of keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conductor.journal.journal import Journal
from conductor.project.layout import ProjectLayout
from conductor.provenance.dsse import payload_bytes, sign_envelope
from conductor.provenance.keys import load_or_create_key
from conductor.provenance.trust import TrustError
from conductor.storage.chainlog import HeadSigner

if TYPE_CHECKING:
    from conductor.provenance.keys import ProjectKey

HEAD_PAYLOAD_TYPE = "application/vnd.conductor.log-head+json"


class _LazySigner:
    """Loads the project key on the first head it signs (reading a log needs no key)."""

    def __init__(self, layout: ProjectLayout) -> None:
        self.layout = layout
        self.key: ProjectKey | None = None

    def __call__(self, head: dict[str, Any]) -> dict[str, Any] | None:
        if self.key is None:
            try:
                self.key = load_or_create_key(self.layout.keys_dir)
            except TrustError:
                return None  # no usable key: the head lags and `conductor verify` names why
        return sign_envelope(payload_bytes(head), HEAD_PAYLOAD_TYPE, self.key)


def project_head_signer(layout: ProjectLayout) -> HeadSigner:
    """A signer for the heads of this project's logs, with the project key (loaded when first needed)."""
    return _LazySigner(layout)


def plan_journal(layout: ProjectLayout, plan_id: str) -> Journal:
    """A plan's journal for writing: its appends keep a head signed with the project key."""
    return Journal.for_plan(layout, plan_id, head_signer=project_head_signer(layout))
