"""The language server starts on what its first diagnostics need, and nothing else.

Importing ``conductor.lsp.server`` loads no pydantic model, no engine, journal, git, model
client, MCP SDK or cryptography; the first diagnostics of a policy need none of them either;
the engine API loads on first use (``conductor.lsp.lazy_api``), when a hover asks for the effective
policy or a task is judged against its project's policy. Each case runs in a fresh interpreter
and reads ``sys.modules`` (what was imported; figures live in ``bench/bench_startup.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

NEVER_AT_START = ("pydantic", "conductor.engine", "conductor.journal", "conductor.policy", "conductor.git",
                  "conductor.llm", "conductor.mcp", "conductor.handoff", "conductor.provenance", "conductor.storage",
                  "openai", "mcp", "cryptography", "jsonschema", "watchfiles")
NEVER_FOR_DIAGNOSTICS = tuple(n for n in NEVER_AT_START if n != "jsonschema")  # it words the errors found
POLICY = "behavior:\n  max_diff_lines: -5\n  max_files_changed: 7\nprotected_paterns: []\n"


def run(code: str, cwd: Path) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it leaves a JSON object in ``out``; ``modules`` is added."""
    script = textwrap.dedent(code) + "\nout['modules'] = sorted(sys.modules)\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", "import json, sys\nout = {}\n" + script], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def loaded(modules: object, names: tuple[str, ...]) -> list[str]:
    assert isinstance(modules, list)
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_importing_the_server_loads_no_engine_model_git_llm_mcp_or_crypto(tmp_path: Path):
    out = run("import conductor.lsp.server", tmp_path)
    assert loaded(out["modules"], NEVER_AT_START) == []


def test_the_first_diagnostics_of_a_policy_need_no_engine_and_a_hover_still_gets_its_effective_policy(
        tmp_path: Path):
    policy = tmp_path / ".conductor" / "policy.yaml"
    policy.parent.mkdir()
    policy.write_text(POLICY)
    out = run(f"""
        from pathlib import Path
        from conductor.lsp.documents import DocumentStore
        path = Path({str(policy)!r})
        store = DocumentStore()
        analysis = store.analyse(path.as_uri(), path, path.read_text(), 1)
        out['codes'] = [d.code for d in analysis.diagnostics]
        out['before'] = sorted(sys.modules)
        valid = store.analyse(path.as_uri(), path, "behavior:\\n  max_files_changed: 7\\n", 2)
        out['invalid_effective'] = analysis.effective is None
        out['limit'] = valid.effective.limits['max_files_changed'].value
    """, tmp_path)
    assert out["codes"] == ["policy/range", "policy/unknown-key"]
    assert loaded(out["before"], NEVER_FOR_DIAGNOSTICS) == [], "the first diagnostics loaded the engine"
    assert out["invalid_effective"] is True
    assert out["limit"] == 7
    assert loaded(out["modules"], ("conductor.engine.api",)) == ["conductor.engine.api"]


def test_the_engine_proxy_is_the_module_itself(tmp_path: Path):
    """Every attribute read through ``conductor.lsp.lazy_api.api`` is the engine module's own, patches included."""
    out = run("""
        from conductor.lsp.lazy_api import api
        import conductor.engine.api as real
        out['same'] = api.project_context is real.project_context and api.EngineError is real.EngineError
        real.project_context = 'patched'
        out['patched'] = api.project_context == 'patched'
        try:
            api.no_such_name
        except AttributeError:
            out['missing'] = True
    """, tmp_path)
    assert out["same"] is True and out["patched"] is True and out["missing"] is True
