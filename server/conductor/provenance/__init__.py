"""Provenance: the project's signing key, signed step records, and checking all of it.

``keys`` creates the per-project Ed25519 key on first use (concurrency-safe, 0600);
``signing`` signs and checks one record and computes the digest that chains records;
``chain`` appends a record to a fork's chain under a lock; ``verify`` checks every record
and every audit log of a project (``conductor verify``).
"""

from conductor.provenance.chain import append_record, chain_head
from conductor.provenance.keys import ProjectKey, load_or_create_key, load_public_key
from conductor.provenance.signing import record_digest, sign_record, verify_signature
from conductor.provenance.verify import Problem, VerifyReport, verify_project

__all__ = [
    "Problem",
    "ProjectKey",
    "VerifyReport",
    "append_record",
    "chain_head",
    "load_or_create_key",
    "load_public_key",
    "record_digest",
    "sign_record",
    "verify_project",
    "verify_signature",
]
