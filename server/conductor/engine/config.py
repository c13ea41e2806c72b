"""Reads a project's ``.conductor/config.yaml`` into the validated :class:`~conductor.contract.config.Config`.

One reader for the runner, the CLI (``explore``'s default number of forks) and the language
server (its model settings): an invalid file is refused with its first diagnostic, a missing
one gives the defaults.
"""

from __future__ import annotations

import yaml

from conductor.contract.config import Config
from conductor.engine.errors import ConfigInvalid
from conductor.project.files import read_text
from conductor.project.layout import ProjectLayout
from conductor.validation import validate_document
from conductor.validation.limits import MAX_BYTES


def load_config(layout: ProjectLayout) -> Config:
    display = layout.relative(layout.config_file)
    try:
        text = read_text(layout.config_file, MAX_BYTES)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigInvalid(f"{display}: {getattr(exc, 'reason', None) or exc.strerror or exc}") from exc
    _doc, diagnostics = validate_document(text, "config", path=layout.config_file)
    errors = [d for d in diagnostics if d.severity == 1]
    if errors:
        raise ConfigInvalid(f"invalid configuration: {errors[0].format(display)}")
    return Config.model_validate(yaml.safe_load(text) or {})
