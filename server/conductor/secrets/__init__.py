"""Secrets: which environment variables hold them, environments without them, one redaction filter.

Why a package of its own: a key must never reach a file, a log, a journal event, a commit, a
model request or a child process that has no business with it. Every place that starts a
process or records text asks this one module, so the rule is written once:

* a *secret variable* is one the configuration names as holding a key (``llm.api_key_env``,
  ``CONDUCTOR_API_KEY``) or whose name ends in ``_API_KEY``, ``_TOKEN``, ``_SECRET``,
  ``_PASSWORD`` or ``_ACCESS_KEY`` (more patterns can be registered);
* :func:`scrubbed_env` is an environment without any secret variable, except those passed
  through by name (an agent CLI needs its own key, nothing else);
* :class:`Redactor` replaces every known secret *value* (from the environment at start-up and
  any registered later) with ``[REDACTED]`` in text and in nested JSON-like values.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 8  # shorter values would redact ordinary words
SECRET_SUFFIXES = ("_API_KEY", "_APIKEY", "_TOKEN", "_SECRET", "_PASSWORD", "_ACCESS_KEY", "_SECRET_KEY")
ALWAYS_SECRET = frozenset({"CONDUCTOR_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"})

_lock = threading.Lock()
_names: set[str] = set(ALWAYS_SECRET)
_values: set[str] = set()
_scanned = False


def register_name(name: str) -> None:
    """Treat the variable ``name`` as secret from now on (``llm.api_key_env`` of the configuration)."""
    with _lock:
        _names.add(name)
        value = os.environ.get(name)
        if value and len(value) >= MIN_SECRET_LENGTH:
            _values.add(value)


def register_value(value: str | None) -> None:
    """Redact ``value`` wherever it appears from now on (a key read from somewhere else)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _values.add(value)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return upper in _names or name in _names or upper.endswith(SECRET_SUFFIXES)


def scrubbed_env(env: Mapping[str, str] | None = None, *, keep: Iterable[str] = ()) -> dict[str, str]:
    """``env`` (default: this process's) without secret variables, except those named in ``keep``."""
    source = os.environ if env is None else env
    allowed = set(keep)
    return {k: v for k, v in source.items() if k in allowed or not is_secret_name(k)}


def _scan() -> None:
    global _scanned
    with _lock:
        if _scanned:
            return
        _scanned = True
        for name, value in os.environ.items():
            if (name in _names or name.upper().endswith(SECRET_SUFFIXES)) and len(value) >= MIN_SECRET_LENGTH:
                _values.add(value)


class Redactor:
    """Replaces known secret values; the process-wide one is :func:`redactor`."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = sorted({v for v in values if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def value(self, value: Any) -> Any:
        """``value`` with secrets replaced in every string inside it (dicts, lists, tuples)."""
        if not self.values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def redactor() -> Redactor:
    """The redactor for every secret known now: secret variables of the environment and registered values."""
    _scan()
    with _lock:
        return Redactor(_values)


def redact(value: Any) -> Any:
    """Shorthand for ``redactor().value(value)``."""
    return redactor().value(value)


__all__ = ["REDACTED", "Redactor", "is_secret_name", "redact", "redactor", "register_name", "register_value",
           "scrubbed_env"]
