"""``conductor init``, ``validate`` and ``policy``: the project, its documents, its policy."""

from __future__ import annotations

from pathlib import Path

import click

from conductor.cli.main import cli
from conductor.cli.output import EXIT_PROBLEMS, emit_json, fail
from conductor.engine import api
from conductor.policy import PolicyError


@cli.command("init")
@click.argument("name", default=".")
@click.option("--json", "as_json", is_flag=True, help="Print what was created as JSON.")
def init_command(name: str, as_json: bool) -> None:
    """Create a project NAME (a folder; `.` for the current one).

    Writes .conductor/policy.yaml and config.yaml (commented, valid), .gitignore entries for
    keys and runtime state, and the agent instructions for the handoff contract: an AGENTS.md
    section, .agents/rules/conductor.md and the /conductor workflow in .agents/workflows/;
    and the schemas an agent needs in .conductor/schemas/ (refreshed when they differ from this
    version's). Never overwrites a file of yours; running it again changes nothing.
    """
    try:
        report = api.init_project(name)
    except api.EngineError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"init: {exc}")
    if as_json:
        emit_json(report)
        return
    for rel in report["created"]:
        click.echo(f"created  {rel}")
    for rel in report["updated"]:
        click.echo(f"updated  {rel}")
    for rel in report["kept"]:
        click.echo(f"kept     {rel}")
    click.echo(f"Conductor project ready at {report['root']}")


@cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print diagnostics as JSON.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def validate_command(paths: tuple[Path, ...], as_json: bool, strict: bool) -> None:
    """Validate Conductor documents under PATHS (default: .conductor of this project).

    Finds policy.yaml, config.yaml, plan documents and *.task.json / *.result.json /
    *.provenance.json files and prints `file:line:col: severity code message` (1-based).
    Exit 1 when any error is found (or any warning with --strict): use it in CI or pre-commit.
    """
    if not paths:
        root = api.find_project_root()
        paths = (root / ".conductor",) if root else (Path("."),)
    results = api.validate_paths(paths)
    errors = warnings = 0
    for entry in results:
        for diag in entry["diagnostics"]:
            errors += diag["severity"] == "error"
            warnings += diag["severity"] == "warning"
        errors += "error" in entry
    if as_json:
        emit_json({"files": results, "errors": errors, "warnings": warnings})
    else:
        for entry in results:
            if "error" in entry:
                click.echo(f"{entry['path']}: error {entry['error']}")
            for diag in entry["diagnostics"]:
                click.echo(api.format_diagnostic(entry["path"], diag))
        click.echo(f"{len(results)} file(s) checked: {errors} error(s), {warnings} warning(s)", err=True)
    if errors or (strict and warnings):
        raise SystemExit(EXIT_PROBLEMS)


@cli.command("policy")
@click.option("--show-origin", is_flag=True, help="Show the level, file and line each value came from.")
@click.option("--json", "as_json", is_flag=True, help="Print the effective policy as JSON (with origins).")
@click.option("--plan", "plan_id", help="Merge this plan's policy level over the project's.")
@click.option("--step", "step_id", help="Also merge this step's level (needs --plan).")
def policy_command(show_origin: bool, as_json: bool, plan_id: str | None, step_id: str | None) -> None:
    """Show the effective policy: project, plan and step levels merged.

    Lists accumulate, limits can only be tightened unless a level says allow_loosen, and a
    protection is dropped only by file_rules.unprotect. Refused loosenings are listed.
    """
    try:
        eff = api.effective_policy(plan_id=plan_id, step_id=step_id, show_origin=True)
    except PolicyError as exc:
        for diag in exc.diagnostics:
            click.echo(diag.format(exc.file), err=True)
        fail(str(exc))
    except api.EngineError as exc:
        fail(str(exc))
    if as_json:
        emit_json(eff)
        return

    def line(label: str, item: dict[str, object]) -> str:
        origin = item["origin"]
        assert isinstance(origin, dict)
        where = origin["level"] if not origin.get("file") else f"{origin['level']} {origin['file']}:{origin['line']}"
        return f"  {label}{item['value']}" + (f"    ({where})" if show_origin else "")

    click.echo("global_constraints:")
    for item in eff["global_constraints"]:
        click.echo(line("- ", item))
    click.echo("protected_patterns:")
    for item in eff["file_rules"]["protected_patterns"]:
        click.echo(line("- ", item))
    if eff["file_rules"]["released_patterns"]:
        click.echo("released (unprotected) patterns:")
        for item in eff["file_rules"]["released_patterns"]:
            click.echo(line("- ", item))
    click.echo("behavior:")
    for name, item in eff["behavior"].items():
        click.echo(line(f"{name}: ", item))
    if eff["verification"]:
        click.echo("verification:")
        for item in eff["verification"]:
            value = item["value"]
            click.echo(line("- ", {**item, "value": f"{value['name']}: {value['run']}"}))
    for refusal in eff["refusals"]:
        o = refusal["origin"]
        click.echo(f"refused: {o['file']}:{o['line']}: {refusal['message']}", err=True)
