"""Secrets stay out, end to end with real processes: a verification command that prints its
environment (and a key it finds elsewhere) while GEMINI_API_KEY and a *_TOKEN are set leaves the
key in no file under .conductor/, no commit, no request body the model server received, and no
output of status, explain or events; a project's .env is never committed by Conductor."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from tests.engine.support import TEST_KEY, conductor, conductor_env, files_containing, make_project, start, wait_for

TOKEN = "ghp_deploy-token-5b1e0c77d2"
PLAN = {"goal": "Add the beta module", "strategy": "default", "steps": [
    {"id": "step_001", "title": "beta module", "instruction": "Do BETA-ONE: write beta.py and ok.txt.",
     "allowed_files": ["beta.py", "ok.txt"], "estimated_confidence": 0.9}]}


def policy(outside: Path) -> str:
    # unsandboxed: the command must be able to read a file under /tmp (a sandbox gives it a private /tmp)
    return f"""\
behavior:
  sandbox: "off"
verification:
  - name: show-environment
    run: "env | sort; echo leaked: [$GEMINI_API_KEY] [$DEPLOY_TOKEN]; cat {outside}; test -f ok.txt"
    timeout_seconds: 60
"""


def git_history(root: Path) -> str:
    return subprocess.run(["git", "log", "-p", "--all", "--format=%H %s%n%b"], cwd=root, capture_output=True,
                          text=True, check=True).stdout


def test_a_verification_printing_its_environment_leaks_no_key(tmp_path: Path, openai_server):
    outside = tmp_path / "elsewhere" / "secrets.txt"  # a key the command finds by itself, not in its environment
    outside.parent.mkdir()
    outside.write_text(f"GEMINI_API_KEY={TEST_KEY}\nDEPLOY_TOKEN={TOKEN}\n")
    openai_server.add(PLAN, purpose="plan", times=None)
    openai_server.add({"files": [{"path": "beta.py", "content": "BETA = 1\n"}], "summary": "beta only"},
                      purpose="edit", match="BETA-ONE", times=None)
    openai_server.add({"instruction": "Do BETA-FIXED: write beta.py and ok.txt.",
                       "allowed_files": ["beta.py", "ok.txt"], "rationale": "ok.txt was missing"},
                      purpose="repair", times=None)
    openai_server.add({"files": [{"path": "beta.py", "content": "BETA = 2\n"}, {"path": "ok.txt", "content": "ok\n"}],
                       "summary": "both"}, purpose="edit", match="BETA-FIXED", times=None)
    root = make_project(tmp_path / "proj", policy(outside))
    env = conductor_env(openai_server.base_url) | {"DEPLOY_TOKEN": TOKEN}

    built = conductor("build", "Add the beta module", "--json", cwd=root, env=env)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["outcome"] == "completed"

    # The command ran without any secret in its environment, and what it printed was redacted.
    verified = json.loads(conductor("events", "--json", "--type", "step.verified", cwd=root).stdout)
    tails = [run["output_tail"] for e in verified for run in e["data"]["evidence"]["verification"]]
    assert len(tails) == 2 and all("leaked: [] []" in t for t in tails), tails
    assert all("GEMINI_API_KEY=[REDACTED]\nDEPLOY_TOKEN=[REDACTED]" in t for t in tails), tails
    # The failed attempt's output went back to the model in the repair request: redacted there too.
    (repair,) = [r for r in openai_server.chat_requests if r.purpose == "repair"]
    assert "DEPLOY_TOKEN=[REDACTED]" in repair.last_user_message

    for secret in (TEST_KEY, TOKEN):
        assert files_containing(root, secret) == [], f"{secret} written to a file"
        assert secret not in git_history(root), f"{secret} committed"
        for request in openai_server.requests:
            assert secret not in request.raw_body, f"{secret} sent to the model ({request.purpose})"
        for args in (["status", "--json"], ["status"], ["explain", "step_001"], ["explain", "step_001", "--json"],
                     ["events", "--json"], ["events"], ["replay", "--json"]):
            shown = conductor(*args, cwd=root, env=env)
            assert shown.returncode == 0, shown.stderr
            assert secret not in shown.stdout + shown.stderr, f"{secret} shown by conductor {' '.join(args)}"
    assert conductor("verify", cwd=root).returncode == 0


def test_a_key_in_a_file_the_model_reads_or_in_its_reply_is_redacted(tmp_path: Path, openai_server):
    """The key's value sits in a file the step may edit (so its content goes into the edit prompt), and
    the endpoint echoes it back in its plan and in the file it writes: the request bodies, the journal,
    the task files and the step's commit all carry [REDACTED] instead."""
    plan = {"goal": "Rename the setting", "strategy": "default", "steps": [
        {"id": "step_001", "title": "rename", "instruction": f"Do RENAME: keep token {TOKEN} as it is.",
         "allowed_files": ["settings.ini"], "estimated_confidence": 0.9}]}
    openai_server.add(plan, purpose="plan", times=None)
    openai_server.add({"files": [{"path": "settings.ini", "content": f"[deploy]\nnew_token = {TOKEN}\n"}],
                       "summary": f"kept {TOKEN}"}, purpose="edit", match="RENAME", times=None)
    root = make_project(tmp_path / "proj")
    (root / "settings.ini").write_text(f"[deploy]\ntoken = {TOKEN}\n")
    subprocess.run(["git", "add", "settings.ini"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "settings"], cwd=root,
                   check=True)
    before = git_history(root)
    env = conductor_env(openai_server.base_url) | {"DEPLOY_TOKEN": TOKEN}

    built = conductor("build", "Rename the setting", "--json", cwd=root, env=env)
    assert built.returncode == 0, built.stderr
    (edit,) = [r for r in openai_server.chat_requests if r.purpose == "edit"]
    assert "token = [REDACTED]" in edit.last_user_message
    for request in openai_server.requests:
        assert TOKEN not in request.raw_body, f"the token was sent to the model ({request.purpose})"
    assert files_containing(root / ".conductor", TOKEN) == []
    added = [line for line in git_history(root).replace(before, "").splitlines() if line.startswith("+")]
    assert added and not [line for line in added if TOKEN in line]  # only the user's own commit holds it
    assert (root / "settings.ini").read_text() == "[deploy]\nnew_token = [REDACTED]\n"


def test_a_project_env_file_is_never_committed_by_conductor(tmp_path: Path):
    root = tmp_path / "proj"
    root.mkdir()
    assert conductor("init", ".", cwd=root).returncode == 0
    ignored = (root / ".gitignore").read_text().splitlines()
    assert {".env", ".env.*", "*.pem", "*.key"} <= set(ignored)

    (root / ".gitignore").write_text("")  # even when the user dropped those lines
    (root / ".env").write_text(f"GEMINI_API_KEY={TEST_KEY}\n")
    (root / ".env.production").write_text(f"DEPLOY_TOKEN={TOKEN}\n")
    (root / "deploy.pem").write_text(f"-----BEGIN PRIVATE KEY-----\n{TOKEN}\n")
    (root / "app.py").write_text("print('hello')\n")
    env = conductor_env(None, key=None)
    engine = start("build", "Say hello twice", cwd=root, env=env)  # no repository yet: Conductor makes the first commit
    wait_for(lambda: list((root / ".conductor" / "handoff").glob("plan_*/fork_main/pending/step_000.task.json")),
             timeout=60)
    engine.send_signal(signal.SIGINT)
    _, err = engine.communicate(timeout=60)
    assert "not committed (protected or secret): " in err, err

    tracked = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert "app.py" in tracked.split()
    assert not {".env", ".env.production", "deploy.pem"} & set(tracked.split())
    history = git_history(root)
    assert TEST_KEY not in history and TOKEN not in history
