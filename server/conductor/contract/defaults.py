"""The built-in policy values, apart from the policy model, so validation reads them without pydantic.

``contract.policy`` re-exports both; validation (the language server's first diagnostics) imports
them from here, which keeps the pydantic models out of its start-up.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "max_diff_lines": 500,
    "max_files_changed": 50,
    "timeout_seconds": 300,
    "max_repairs": 2,
    "approval_below": 0.5,
    "caution_below": 0.8,
    "fork_below": 0.0,
    "allow_symlinks": False,
    "network": "allow",
    "sandbox": "auto",
}
"""Built-in values of every behavior limit, used when no level sets one."""

ALWAYS_PROTECTED = (".conductor/**", ".git/**")
"""Protected at every level; no ``unprotect`` releases them (Conductor's records and the repository)."""
