"""Provenance: the project's signing key, signed step records, signed log heads, and checking all of it.

``keys`` creates the per-project Ed25519 key on first use (concurrency-safe, 0600) and
``trust`` pins it in ``.conductor/trust.json`` (rotation is a signed event); ``dsse`` signs
and opens DSSE envelopes; ``signing`` turns a step's record into an in-toto Statement in an
envelope and computes the digest that chains records; ``chain`` appends a record to a fork's
chain under a lock; ``heads`` signs the heads of the chained logs; ``verify`` checks every
record, log and pin of a project (``conductor verify``).

The package imports nothing itself, so reading a journal never loads the cryptography
library: import the module you need.
"""
