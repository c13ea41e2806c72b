#!/usr/bin/env bash
# Idempotent install of the coding-agent CLIs the end-to-end agent tests drive, cached outside
# the clone (default ~/.cache/conductor-agents):
#   aider   aider-chat from PyPI, in its own venv:   $DIR/aider/bin/aider
#   codex   @openai/codex from npm, in its own prefix: $DIR/codex/node_modules/.bin/codex
# Each is reused when its `--version` answers with the pinned version. Recipes and pitfalls:
# REAL-CLIENTS.md (shared notes). tests/agents/tools.py finds them in the same places.
#   CONDUCTOR_AGENT_TOOLS   cache folder (default: ~/.cache/conductor-agents)
set -euo pipefail

AIDER_VERSION=0.86.2
CODEX_VERSION=0.171.0
DIR="${CONDUCTOR_AGENT_TOOLS:-${HOME}/.cache/conductor-agents}"
mkdir -p "$DIR"

# --- aider ------------------------------------------------------------------------------
AIDER="$DIR/aider/bin/aider"
if [ -x "$AIDER" ] && HOME="$DIR/scratch-home" "$AIDER" --version 2>/dev/null | grep -q "$AIDER_VERSION"; then
  echo "aider $AIDER_VERSION cached at $DIR/aider"
else
  echo "installing aider-chat $AIDER_VERSION into $DIR/aider (about 1.5 minutes)"
  PY=""
  for candidate in python3.12 python3.11 python3.10 python3; do  # aider-chat wants 3.10-3.12
    if "$candidate" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12)' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
  [ -n "$PY" ] || { echo "aider-chat needs Python 3.10 to 3.12" >&2; exit 1; }
  rm -rf "$DIR/aider"
  "$PY" -m venv "$DIR/aider"
  "$DIR/aider/bin/python" -m pip install -q --disable-pip-version-check "aider-chat==$AIDER_VERSION"
  HOME="$DIR/scratch-home" "$AIDER" --version
fi

# --- Codex CLI --------------------------------------------------------------------------
CODEX="$DIR/codex/node_modules/.bin/codex"
command -v node >/dev/null || { echo "node is required for Codex CLI" >&2; exit 1; }
if [ -x "$CODEX" ] && "$CODEX" --version 2>/dev/null | grep -q "$CODEX_VERSION"; then
  echo "codex $CODEX_VERSION cached at $DIR/codex"
else
  echo "installing @openai/codex $CODEX_VERSION into $DIR/codex"
  rm -rf "$DIR/codex"
  mkdir -p "$DIR/codex"
  (cd "$DIR/codex" && npm init -y >/dev/null && npm install --no-audit --no-fund "@openai/codex@$CODEX_VERSION" >/dev/null)
  "$CODEX" --version
fi
rm -rf "$DIR/scratch-home"
