"""``conductor init``: creates a project's ``.conductor/`` folder and the agent-facing instructions.

It never overwrites a user's file. Files Conductor owns are created only when missing;
``AGENTS.md`` gets a marked section appended once (and that section, Conductor's own, is brought
up to date when the contract changes; the rest of the file is never touched). The ``.agents/``
rule and workflow files end with a line holding the digest of what Conductor wrote: while the
file still matches it, ``init`` brings it up to date; once a person edits it, it is theirs and
kept. ``.gitignore`` gets the entries it lacks;
the editors' MCP configuration (``.vscode/mcp.json``, ``.mcp.json``) gets a ``conductor``
server entry when it has none (:mod:`conductor.project.mcp_config`). The schemas an agent
needs (task, result, plan, verdict) are copied into ``.conductor/schemas/`` and refreshed
whenever they differ from the installed Conductor's (after an upgrade), so an agent can
validate offline. Running it twice changes nothing the second time. ``.gitignore`` lists
Conductor's runtime state and every place a secret tends to live (``.env``, ``.env.*``, key
files), so no commit of Conductor's (or the user's ``git add -A``) takes them along.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from conductor import __version__
from conductor.contract.schemas import schema_dir
from conductor.project.files import Unreadable, atomic_write_text, read_regular
from conductor.project.layout import AGENT_SCHEMAS, ProjectLayout
from conductor.project.mcp_config import write_project_configs
from conductor.storage.atomic import atomic_write_bytes

GENERATED = re.compile(r"\n<!-- conductor:generated sha256=([0-9a-f]{64}) [^\n]*-->\n\Z")
SECTION_BEGIN = "<!-- conductor:begin -->"
SECTION_END = "<!-- conductor:end -->"
GITIGNORE_ENTRIES = (
    *ProjectLayout.ignored_by_git(),
    ".env",
    ".env.*",
    "!.env.example",
    "*.pem",
    "*.key",
)


def template(name: str) -> str:
    return resources.files("conductor.project").joinpath("templates", name).read_text(encoding="utf-8")


@dataclass
class InitReport:
    root: Path
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"root": str(self.root), "created": self.created, "updated": self.updated, "kept": self.kept}


def _rules_text() -> str:
    return "# Conductor handoff contract\n\n" + template("agent_contract.md")


def _workflow_text() -> str:
    return (
        "---\ndescription: Take the next pending Conductor task and do it under the handoff contract\n---\n\n"
        "# /conductor\n\n"
        "1. If the Conductor MCP server is available, call `next_task` and skip to step 4.\n"
        "2. List `.conductor/handoff/plan_*/fork_*/pending/*.task.json`; take the lowest step number "
        "(every pending task is ready).\n"
        "3. Claim it by moving it into the sibling `in_progress/` folder; if the move fails, "
        "another agent took it: go back to step 2. Check its `checksum` (RFC 8785 JCS, see below).\n"
        "4. Read the task: `instruction`, `allowed_files`, `constraints`, `protected_patterns`, "
        "`max_diff_lines`, `max_files_changed`, `verification`, the absolute `workspace`, `nonce`, "
        "`verdict_file`.\n"
        "5. Make the change in `workspace`, touching only `allowed_files`; run the `verification` commands there.\n"
        "6. Write `step_NNN.explanation.md`, then `step_NNN.result.json` echoing the task's `nonce`, beside the "
        "task (or call `submit_result`).\n"
        "7. Report Conductor's verdict: read `verdict_file` when it appears (or `submit_result`'s answer).\n\n"
        + template("agent_contract.md")
    )


def init_project(target: str | Path, name: str | None = None) -> InitReport:
    """Create (or complete) a Conductor project at ``target``."""
    root = Path(target).resolve()
    root.mkdir(parents=True, exist_ok=True)
    layout = ProjectLayout.at(root)
    report = InitReport(root=root)

    def ensure(path: Path, text: str) -> None:
        rel = path.relative_to(root).as_posix()
        if path.exists():
            report.kept.append(rel)
            return
        atomic_write_text(path, text)
        report.created.append(rel)

    layout.conductor_dir.mkdir(exist_ok=True)
    ensure(layout.policy_file, template("policy.yaml"))
    ensure(layout.config_file, template("config.yaml"))
    _schemas(layout, report)
    _generated(root / ".agents" / "rules" / "conductor.md", _rules_text(), report)
    _generated(root / ".agents" / "workflows" / "conductor.md", _workflow_text(), report)
    _agents_md(root / "AGENTS.md", report, name or root.name)
    _gitignore(root / ".gitignore", report)
    _mcp_configs(root, report)
    return report


def _schemas(layout: ProjectLayout, report: InitReport) -> None:
    """Copy the agent-facing schemas into ``.conductor/schemas/``; rewrite any that differ from this version's."""
    folder = layout.schemas_dir
    if os.path.lexists(folder) and not stat.S_ISDIR(os.lstat(folder).st_mode):
        raise OSError(f"{folder} is not a folder (a symlink or a file?); remove it and run `conductor init` again")
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {layout.schema_file(kind): (schema_dir() / f"{kind}.schema.json").read_bytes() for kind in AGENT_SCHEMAS}
    wanted[layout.schemas_version_file] = f"{__version__}\n".encode()
    for path, data in wanted.items():
        rel = layout.relative_path(path)
        existed = os.path.lexists(path)
        try:
            same = existed and read_regular(path, 4 * len(data) + 4096, follow_symlinks=False) == data
        except (Unreadable, OSError):
            same = False  # not a regular file (or too large): replaced below
        if same:
            report.kept.append(rel)
            continue
        atomic_write_bytes(path, data)  # a rename: replaces a symlink or FIFO there, never writes through it
        (report.updated if existed else report.created).append(rel)


def _with_digest(body: str) -> str:
    digest = hashlib.sha256(body.encode()).hexdigest()
    return (f"{body}\n<!-- conductor:generated sha256={digest} (`conductor init` keeps this file up to date "
            "while it is unedited; edit it and it is yours) -->\n")


def _generated(path: Path, body: str, report: InitReport) -> None:
    """A file Conductor writes and refreshes until a person edits it (see the module docstring)."""
    rel = path.relative_to(report.root).as_posix()
    wanted = _with_digest(body)
    if not os.path.lexists(path):
        atomic_write_text(path, wanted)
        report.created.append(rel)
        return
    try:
        text = read_regular(path, 1 << 20, follow_symlinks=False).decode("utf-8")
    except (Unreadable, OSError, UnicodeDecodeError):
        text = None  # not a regular file, or not text: not Conductor's to touch
    if text is None or text == wanted or not _unedited(text):
        report.kept.append(rel)
        return
    atomic_write_text(path, wanted)
    report.updated.append(rel)


def _unedited(text: str) -> bool:
    """Whether ``text`` ends with a ``conductor:generated`` line whose digest matches what is above it."""
    mark = GENERATED.search(text)
    return mark is not None and hashlib.sha256(text[:mark.start()].encode()).hexdigest() == mark.group(1)


def _mcp_configs(root: Path, report: InitReport) -> None:
    """Project-level MCP server entries (.vscode/mcp.json, .mcp.json), merged in only when absent."""
    written = write_project_configs(root)
    report.created.extend(written.created)
    report.updated.extend(written.updated)
    report.kept.extend(written.kept)


def _agents_md(path: Path, report: InitReport, project: str) -> None:
    section = (
        f"{SECTION_BEGIN}\n## Conductor (handoff contract)\n\n"
        f"This project ({project}) is orchestrated by Conductor. To do its work, run the "
        "`/conductor` workflow, or follow these rules.\n\n" + template("agent_contract.md") + f"{SECTION_END}\n"
    )
    if not path.exists():
        atomic_write_text(path, f"# Agent instructions\n\n{section}")
        report.created.append("AGENTS.md")
        return
    text = path.read_text(encoding="utf-8")
    begin, end = text.find(SECTION_BEGIN), text.find(SECTION_END)
    if begin >= 0 and end > begin:  # Conductor's own marked section: brought up to this version's contract
        current = text[begin:end + len(SECTION_END)] + "\n"
        if current == section or text[begin:].startswith(section):
            report.kept.append("AGENTS.md")
            return
        rest = text[end + len(SECTION_END):].lstrip("\n")
        atomic_write_text(path, text[:begin] + section + (("\n" + rest) if rest else ""))
        report.updated.append("AGENTS.md")
        return
    if begin >= 0:  # a begin marker without its end: someone edited it; leave the file alone
        report.kept.append("AGENTS.md")
        return
    atomic_write_text(path, text.rstrip("\n") + "\n\n" + section)
    report.updated.append("AGENTS.md")


def _gitignore(path: Path, report: InitReport) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [e for e in GITIGNORE_ENTRIES if e not in present]
    if not missing:
        report.kept.append(".gitignore")
        return
    block = "# Conductor runtime state, signing keys and secrets (never commit them)\n" + "\n".join(missing) + "\n"
    new = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    atomic_write_text(path, new)
    (report.updated if text else report.created).append(".gitignore")
