"""The Node.js reference agent's dependency, installed the way CI installs it.

``npm ci`` in ``tests/agents/node/`` from the committed lock file, with npm's download cache under
``~/.cache/npm`` (outside the clone, so a second run works offline). Outside CI a missing ``node``
or ``npm`` skips the tests that need them; under ``CI=true`` it fails them (``require_tool``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool

NODE_DIR = Path(__file__).resolve().parent / "node"
AGENT = NODE_DIR / "agent.mjs"
CHECKSUM = NODE_DIR / "checksum.mjs"
NPM_CACHE = Path.home() / ".cache" / "npm"


def _installed_stamp() -> Path:
    return NODE_DIR / "node_modules" / ".conductor-lock.sha256"


def ensure_node_agent() -> str:
    """The path of ``node``, with the agent's dependencies installed exactly as the lock file says."""
    node = require_tool("node")
    require_tool("npm")
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock).hexdigest()
    stamp = _installed_stamp()
    if stamp.is_file() and stamp.read_text() == digest:
        return node
    proc = subprocess.run(["npm", "ci", "--cache", str(NPM_CACHE), "--prefer-offline", "--no-audit", "--no-fund",
                           "--loglevel", "error"], cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"npm ci in {NODE_DIR} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    expected = json.loads(lock)["packages"]["node_modules/canonicalize"]["version"]
    installed = json.loads((NODE_DIR / "node_modules" / "canonicalize" / "package.json").read_text())["version"]
    assert installed == expected, f"npm installed canonicalize {installed}, the lock file says {expected}"
    stamp.write_text(digest)
    return node
