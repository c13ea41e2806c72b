"""``conductor build | explore | resume | status | explain | events | approve | replay``.

Long commands show progress: a live line in a terminal, plain lines otherwise (CI, pipes).
Ctrl-C halts cleanly (the journal records the halt) and ``conductor resume`` picks up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import click

from conductor.cli.group import cli
from conductor.cli.output import EXIT_PROBLEMS, emit_json, table
from conductor.engine import api
from conductor.engine.api import STATE_MARK, status_text


class ProgressPrinter:
    """Prints engine progress: one line per message; in a terminal, the fraction too."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def __call__(self, message: str, fraction: float | None = None) -> None:
        if self.quiet:
            return
        prefix = f"[{fraction * 100:3.0f}%] " if fraction is not None and self.tty else ""
        click.echo(f"{prefix}{message}", err=True)


def _run_async(make_coro: Any) -> Any:
    """Run the engine with Ctrl-C wired to a clean halt (a second Ctrl-C aborts at once)."""

    async def main() -> Any:
        cancel = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_interrupt() -> None:
            if cancel.is_set():
                raise KeyboardInterrupt
            click.echo("\nhalting cleanly… (Ctrl-C again to abort)", err=True)
            cancel.set()

        try:
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
            loop.add_signal_handler(signal.SIGTERM, on_interrupt)
        except (NotImplementedError, RuntimeError):
            pass
        return await make_coro(cancel)

    return asyncio.run(main())


def _print_summary(summary: dict[str, Any]) -> None:
    click.echo(f"plan {summary['plan_id']}: {summary['outcome']}")
    for note in summary.get("notes", []):
        click.echo(f"  note: {note}")
    if summary.get("scores"):
        rows = []
        for s in summary["scores"]:
            parts = ", ".join(f"{k} {v['value']:.2f}" for k, v in s["parts"].items() if isinstance(v, dict))
            rows.append([s["fork_id"], f"{s['score']:.3f}", "yes" if s["eligible"] else "no", parts])
        click.echo(table(["fork", "score", "eligible", "parts"], rows))
    if summary.get("winner"):
        click.echo(f"winner: {summary['winner']}")
    if summary.get("merge_message"):
        click.echo(summary["merge_message"])


def _report(result: Any, as_json: bool) -> None:
    """Print a run's summary; exit 1 unless the plan completed."""
    summary = result.to_json()
    if as_json:
        emit_json(summary)
    else:
        _print_summary(summary)
    if summary["outcome"] != "completed":
        raise SystemExit(EXIT_PROBLEMS)


def _goal_command(goal: str, forks: int, mode: str | None, merge: bool, as_json: bool, quiet: bool) -> None:
    printer = ProgressPrinter(quiet or as_json)

    def announce(plan_id: str) -> None:
        printer(f"plan {plan_id}: {goal}")

    summary = _run_async(lambda cancel: api.run_goal(None, goal, forks=forks, mode=mode, merge=merge,
                                                     cancel=cancel, on_progress=printer, on_plan=announce))
    _report(summary, as_json)


_goal_options = [
    click.option("--mode", type=click.Choice(["handoff", "llm"]), help="Executor (default: config.yaml's mode)."),
    click.option("--no-merge", is_flag=True, help="Keep the winner on its branch instead of merging it."),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    click.option("--quiet", is_flag=True, help="No progress lines."),
]


def goal_options(fn: Any) -> Any:
    for option in reversed(_goal_options):
        fn = option(fn)
    return fn


@cli.command("build")
@click.argument("goal")
@goal_options
def build_command(goal: str, mode: str | None, no_merge: bool, as_json: bool, quiet: bool) -> None:
    """Plan GOAL and run it as one fork (its own git worktree), then merge it.

    In handoff mode (default, no API key needed) each step becomes a task file under
    .conductor/handoff/ for an agent (your IDE's agent, or `conductor agent`).
    """
    _goal_command(goal, 1, mode, not no_merge, as_json, quiet)


@cli.command("explore")
@click.argument("goal")
@click.option("--forks", type=click.IntRange(1, 16), help="Strategies to try (default: config.yaml's forks, 3).")
@goal_options
def explore_command(goal: str, forks: int | None, mode: str | None, no_merge: bool, as_json: bool,
                    quiet: bool) -> None:
    """Plan GOAL under several strategies, run each fork in its own git worktree concurrently,
    score them on their evidence and merge the winner; the others stay on their branches."""
    if forks is None:
        forks = api.project_config().forks
    _goal_command(goal, forks, mode, not no_merge, as_json, quiet)


@cli.command("resume")
@click.option("--plan", "plan_id", help="Plan id (default: the latest).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True)
def resume_command(plan_id: str | None, as_json: bool, quiet: bool) -> None:
    """Continue a halted or crashed plan from its journal; nothing completed is issued again."""
    printer = ProgressPrinter(quiet or as_json)
    summary = _run_async(lambda cancel: api.resume(None, plan_id, cancel=cancel, on_progress=printer))
    _report(summary, as_json)


@cli.command("status")
@click.option("--plan", "plan_id", help="Only this plan.")
@click.option("--json", "as_json", is_flag=True)
def status_command(plan_id: str | None, as_json: bool) -> None:
    """Plans, their forks and steps: state, confidence and verdicts."""
    data = api.status(None, plan_id)
    if as_json:
        emit_json(data)
        return
    click.echo(status_text(data))


@cli.command("explain")
@click.argument("step_id")
@click.option("--plan", "plan_id", help="Plan id (default: the latest).")
@click.option("--fork", "fork_id", help="Fork (default: the merged one, else the first that has the step).")
@click.option("--json", "as_json", is_flag=True)
def explain_command(step_id: str, plan_id: str | None, fork_id: str | None, as_json: bool) -> None:
    """Why STEP_ID was planned, its confidence factors, what happened, the evidence,
    the failure cause and what to do about it."""
    data = api.explain_step(None, step_id, plan_id, fork_id)
    if as_json:
        emit_json(data)
    else:
        click.echo(data.markdown)


@cli.command("events")
@click.option("--plan", "plan_id", help="Plan id (default: the latest).")
@click.option("--all", "all_plans", is_flag=True, help="Events of every plan.")
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable), e.g. step.failed.")
@click.option("--fork", "fork_id")
@click.option("--step", "step_id")
@click.option("--json", "as_json", is_flag=True)
def events_command(plan_id: str | None, all_plans: bool, types: tuple[str, ...], fork_id: str | None,
                   step_id: str | None, as_json: bool) -> None:
    """The plan's journal: every state change, in order."""
    events = [e.model_dump(mode="json") for e in api.list_events(None, plan_id, types=list(types), fork_id=fork_id,
                                                                  step_id=step_id, all_plans=all_plans)]
    if as_json:
        emit_json(events)
        return
    for e in events:
        data = e.get("data") or {}
        where = "/".join(x for x in (data.get("fork_id"), data.get("step_id")) if x)
        detail = {k: v for k, v in data.items() if k not in ("fork_id", "step_id", "plan", "evidence", "config",
                                                              "policy", "origins", "response_text")}
        text = json.dumps(detail, ensure_ascii=False)
        click.echo(f"{e['seq']:5d} {e['ts']} {e['type']:22} {where:18} {text[:120]}")


@cli.command("approve")
@click.argument("step_id")
@click.option("--plan", "plan_id", help="Plan id (default: the latest).")
@click.option("--fork", "fork_id")
@click.option("--reject", is_flag=True, help="Reject instead: the step is skipped.")
@click.option("--json", "as_json", is_flag=True)
def approve_command(step_id: str, plan_id: str | None, fork_id: str | None, reject: bool, as_json: bool) -> None:
    """Approve (or --reject) a step that waits at LOW confidence."""
    data = api.approve_step(None, step_id, plan_id, fork_id, "reject" if reject else "approve")
    if as_json:
        emit_json(data)
    else:
        click.echo(f"{data.decision}d {step_id} of plan {data.plan_id} ({', '.join(data.forks)})")


@cli.command("replay")
@click.option("--plan", "plan_id", help="Plan id (default: the latest).")
@click.option("--to", "to_seq", type=int, help="Event number to stop at (default: the last).")
@click.option("--rerun-planning", is_flag=True,
              help="Plan every model-planned fork again from the journaled replies (no network) and compare.")
@click.option("--json", "as_json", is_flag=True)
def replay_command(plan_id: str | None, to_seq: int | None, rerun_planning: bool, as_json: bool) -> None:
    """The full state of a plan as it was at event --to: every step's status, the policy in
    force, confidence and evidence (computed from the journal alone)."""
    view = api.replay_plan(None, plan_id, to_seq, rerun_planning=rerun_planning)
    data = view.to_json()
    if not rerun_planning:
        data.pop("replanned")
    if as_json:
        emit_json(data)
        return
    state = data["state"]
    click.echo(f"plan {data['plan_id']} at event {data['to_seq']}: {state['status']}"
               + ("" if data["journal_ok"] else f" (journal broken: {data['journal_break']})"))
    for fork_id, fork in state["forks"].items():
        click.echo(f"  fork {fork_id} ({fork['strategy']}) {fork['status']}")
        for step_id, step in fork["steps"].items():
            conf = step.get("confidence") or {}
            click.echo(f"    {STATE_MARK.get(step['state'], '?')} {step_id} [{step['state']}"
                       + (f" {conf.get('level')} {conf.get('score')}" if conf else "") + "]"
                       + (f" verdict {step['verdict']}" if step.get("verdict") else ""))
    if state.get("policy"):
        click.echo("  policy: " + json.dumps(state["policy"])[:200])
    for item in data.get("replanned") or []:
        if item["replanned"]:
            verdict = "identical to the recorded plan" if item["identical"] else "DIFFERS from the recorded plan"
            click.echo(f"  re-planned fork {item['fork_id']} from recorded replies: {verdict}")
        else:
            click.echo(f"  fork {item['fork_id']} not re-planned: {item['why']}")

