"""Secrets are named by configuration or by their variable's name, kept out of child environments,
and redacted wherever their values would be written."""

from __future__ import annotations

import os
import subprocess
import sys

from conductor import secrets


def test_a_scrubbed_environment_has_no_secret_variable_except_those_passed_by_name(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "g-1234567890")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_1234567890")
    monkeypatch.setenv("DB_PASSWORD", "hunter2hunter2")
    monkeypatch.setenv("PATH_TO_THINGS", "/x")
    env = secrets.scrubbed_env(keep=["GITHUB_TOKEN"])
    assert "GEMINI_API_KEY" not in env and "DB_PASSWORD" not in env
    assert env["GITHUB_TOKEN"] == "ghp_1234567890" and env["PATH_TO_THINGS"] == "/x"


def test_a_configured_key_variable_is_secret_whatever_its_name(monkeypatch):
    monkeypatch.setenv("MY_LLM", "configured-key-value")
    secrets.register_name("MY_LLM")
    assert "MY_LLM" not in secrets.scrubbed_env()
    assert secrets.redact({"out": ["key=configured-key-value!"]}) == {"out": ["key=[REDACTED]!"]}


def test_values_of_secret_variables_in_the_environment_are_redacted_in_nested_values():
    env = {**os.environ, "SERVICE_API_KEY": "sk-abcdefghijklmnop"}
    code = ("from conductor import secrets; "
            "print(secrets.redact({'a': ('sk-abcdefghijklmnop', 3), 'b': 'short'}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "{'a': ['[REDACTED]', 3], 'b': 'short'}"


def test_short_values_are_not_treated_as_secrets():
    assert secrets.Redactor(["abc"]).text("abc abc") == "abc abc"
