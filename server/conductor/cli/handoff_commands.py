"""``conductor agent``, ``verify``, ``keys`` and ``handoff-metrics``: the agent side, trust, and numbers."""

from __future__ import annotations

from pathlib import Path

import click

from conductor.cli.group import cli
from conductor.cli.output import EXIT_PROBLEMS, EXIT_UNUSABLE, emit_json, fail
from conductor.engine import api
from conductor.project.layout import find_project_root


def _root(root: Path | None) -> Path:
    found = find_project_root(root) if root is not None else find_project_root()
    if found is None:
        fail(f"no .conductor folder at or above {root or Path.cwd()} (run `conductor init`)", EXIT_UNUSABLE)
    return found


root_option = click.option("--root", type=click.Path(path_type=Path, file_okay=False),
                           help="Project folder (default: the nearest folder with .conductor).")


@cli.command("agent")
@click.option("--preset", "preset", metavar="NAME",
              help="Run a coding-agent CLI per task: aider, claude-code, codex, gemini-cli, opencode, or one "
              "defined under `agents:` in config.yaml. `--preset list` shows them all.")
@click.option("--command", "command", help="Shell command run per task (cwd = the task's workspace).")
@click.option("--pass-env", "pass_env", multiple=True, metavar="NAME",
              help="Pass this secret environment variable through to the command (repeatable); every other "
              "*_API_KEY, *_TOKEN, *_SECRET … is removed from its environment.")
@click.option("--plan", "plan_id", help="Only take tasks of this plan id.")
@click.option("--fork", "fork_id", help="Only take tasks of this fork id.")
@click.option("--once", is_flag=True, help="Handle at most one task, then exit.")
@click.option("--max-tasks", type=click.IntRange(min=1), help="Exit after handling N tasks.")
@click.option("--idle-exit", type=click.FloatRange(min=0), help="Exit after SECONDS without a task.")
@click.option("--name", default="conductor-agent", show_default=True, help="Agent name in results.")
@click.option("--json", "as_json", is_flag=True, help="With `--preset list`: print the presets as JSON.")
@root_option
def agent_command(preset: str | None, command: str | None, pass_env: tuple[str, ...], plan_id: str | None,
                  fork_id: str | None, once: bool, max_tasks: int | None, idle_exit: float | None, name: str,
                  as_json: bool, root: Path | None) -> None:
    """Run an agent: claim pending tasks and execute them.

    Claims tasks by renaming them from pending/ to in_progress/ (several agents may run at
    once; each task goes to exactly one), works only on the task's allowed_files and writes
    step_NNN.explanation.md and step_NNN.result.json atomically, recording what ran.

    With --preset, a coding-agent CLI does the work: the task (instruction, allowed files,
    constraints, limits) becomes its prompt, config.yaml's model is passed to it where the tool
    takes one (its own login otherwise), and a planning task's answer is parsed for the plan
    document. With --command, the command gets CONDUCTOR_TASK_FILE, CONDUCTOR_TASK_ID,
    CONDUCTOR_WORKSPACE, CONDUCTOR_ALLOWED_FILES (one per line) and CONDUCTOR_INSTRUCTION; exit
    code 0 means completed; for plan tasks its stdout carries a plan JSON document. Both run
    in a bubblewrap sandbox (behavior.sandbox, behavior.network in policy.yaml). Without
    either, the configured LLM does the work.
    """
    if preset == "list":
        _list_presets(root, as_json)
        return
    agent = api.reference_agent(lambda line: click.echo(line), root=_root(root), command=command, plan_id=plan_id,
                                fork_id=fork_id, once=once, max_tasks=max_tasks, idle_exit=idle_exit, name=name,
                                preset=preset, pass_env=list(pass_env))
    try:
        handled = agent.run()
    except KeyboardInterrupt:
        return
    click.echo(f"agent {agent.identity}: {handled} task(s) handled")


def _list_presets(root: Path | None, as_json: bool) -> None:
    """Every preset: the command line it runs, whether the tool is installed, what it is trusted to do."""
    listing = api.agent_presets(find_project_root(root) if root is not None else find_project_root())
    if as_json:
        emit_json(listing)
        return
    target = listing["project_model"]
    for row in listing["presets"]:
        if row["installed"]:
            state = f"installed ({row['path']})"
        else:
            state = f"not installed ({row['install'] or 'see its documentation'})"
        model = f"config.yaml's model ({target['model']})" if row["uses_project_model"] else "its own login or key"
        passes = f"; secrets passed through: {', '.join(row['pass_env'])}" if row['pass_env'] else ""
        click.echo(f"{row['name']}: {row['description']}")
        click.echo(f"  command:  {row['command']}")
        click.echo(f"  status:   {state}")
        click.echo(f"  model:    {model}{passes}")
        click.echo(f"  trusted:  {row['trusted']}")
        click.echo(f"  tested:   {row['tested']}")


@cli.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@root_option
def verify_command(as_json: bool, root: Path | None) -> None:
    """Check every provenance signature and chain and every audit log chain of the project.

    Names the first broken link of each chain (file and line, or step). Exit 1 when
    anything is broken.
    """
    report = api.verify_project(_root(root))
    if as_json:
        emit_json(report)
    else:
        for note in report.notes:
            click.echo(f"note: {note}")
        for problem in report.problems:
            click.echo(f"BROKEN {problem}")
        state = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        checked = f"{report.records_checked} provenance record(s), {report.logs_checked} chained log(s)"
        click.echo(f"{state}: {checked}")
    if not report.ok:
        raise SystemExit(EXIT_PROBLEMS)


@cli.group("keys")
def keys_group() -> None:
    """The project's signing key (pinned in .conductor/trust.json)."""


@keys_group.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print the old and new key ids as JSON.")
@root_option
def keys_rotate_command(as_json: bool, root: Path | None) -> None:
    """Replace the signing key; the old key signs the new one into trust.json.

    Everything signed before stays verifiable. The old private key is kept under
    .conductor/keys/retired/. Commit the changed .conductor/trust.json.
    """
    rotated = api.rotate_project_key(_root(root))
    if as_json:
        emit_json(rotated)
        return
    click.echo(f"rotated the project key: {rotated['old_key_id'][:16]}… → {rotated['new_key_id'][:16]}…")
    click.echo(f"{rotated['trust_file']} now trusts the new key through a rotation signed by the old one; commit it")


@keys_group.command("add")
@click.option("--name", help="Whose key it is, as trust.json shows it (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print the new key id as JSON.")
@root_option
def keys_add_command(name: str | None, as_json: bool, root: Path | None) -> None:
    """Give this clone its own signing key (a fresh clone has none: keys are never committed).

    The key is listed in .conductor/trust.json as a member key; `conductor verify` trusts
    what it signs once that change is committed (so a person could review it).
    """
    added = api.add_member_key(_root(root), name)
    if as_json:
        emit_json(added)
        return
    click.echo(f"added your signing key {added['key_id'][:16]}… ({added['name']}) to {added['trust_file']}")
    click.echo(f"commit {added['trust_file']}: `conductor verify` trusts what this key signs once that is committed")


@cli.command("handoff-metrics")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@root_option
def handoff_metrics_command(as_json: bool, root: Path | None) -> None:
    """Show hand-off metrics (counts, success rate, latency percentiles), derived from the audit logs."""
    metrics = api.handoff_metrics(_root(root))
    if as_json:
        emit_json(metrics)
    else:
        click.echo(api.format_metrics(metrics))
