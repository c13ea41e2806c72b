"""The real engine behind the language server: `conductor.build` runs a plan whose step has
LOW confidence; the server asks with window/showMessageRequest, the editor answers Approve,
the answer is journaled exactly as `conductor approve` would, and the plan completes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lsprotocol import types as lsp

from tests.conftest import require_tool
from tests.lsp.conftest import Recorder, server_env, start_client
from tests.lsp.helpers import wait_for

PLAN = {"goal": "Add risky", "strategy": "default", "steps": [
    {"id": "step_001", "title": "risky change", "instruction": "Do RISKY-ONE.", "allowed_files": ["risky.py"],
     "estimated_confidence": 0.1}]}


async def test_a_low_confidence_step_is_approved_from_the_editor(tmp_path: Path, openai_server) -> None:
    require_tool("git")
    project = tmp_path / "proj"
    (project / ".conductor").mkdir(parents=True)
    (project / ".conductor" / "policy.yaml").write_text("behavior:\n  approval_below: 0.9\n  caution_below: 0.95\n")
    (project / ".conductor" / "config.yaml").write_text("mode: llm\nllm:\n  model: scripted-model\n  max_retries: 1\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "start"],
                   cwd=project, check=True)
    openai_server.add(PLAN, purpose="plan")
    openai_server.add({"files": [{"path": "risky.py", "content": "R = 1\n"}], "summary": "done"}, purpose="edit",
                      match="RISKY-ONE")
    env = server_env(tmp_path)
    env.update({"CONDUCTOR_LLM_BASE_URL": openai_server.base_url, "CONDUCTOR_LLM_MODEL": "scripted-model",
                "GEMINI_API_KEY": "sk-lsp-test-key"})
    rec = Recorder()
    rec.answers = ["Approve"]
    client = await start_client(project, "visual_studio_code", tmp_path, rec, env=env)
    try:
        started = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command="conductor.build", arguments=[{"goal": "Add risky"}]))
        plan_id = started["plan_id"]
        await wait_for(lambda: rec.message_requests, what="the approval prompt", timeout=60)
        assert "step_001" in rec.message_requests[0].message and "LOW confidence" in rec.message_requests[0].message
        assert [a.title for a in rec.message_requests[0].actions] == ["Approve", "Skip", "Explain"]
        await wait_for(lambda: any(f"build {plan_id} finished" in m.message for m in client.messages),
                       what="build finished", timeout=90)
    finally:
        await client.shutdown_session()
        await client.stop()
    journal = project / ".conductor" / "plans" / plan_id / "journal.jsonl"
    types = [json.loads(line)["type"] for line in journal.read_text().splitlines()]
    assert types.index("step.waiting_approval") < types.index("step.approved") < types.index("step.completed")
    assert (project / "risky.py").read_text() == "R = 1\n"
