"""``conductor init``, ``validate`` and ``policy``: the project, its documents, its policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conductor.cli.group import cli
from conductor.cli.output import EXIT_PROBLEMS, emit_json
from conductor.engine import api
from conductor.project.layout import ProjectLayout


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
    report = api.init_project(name)  # a refusal (a full disk, a file where a folder belongs) is one line, exit 3
    if as_json:
        emit_json(report)
        return
    for rel in report.created:
        click.echo(f"created  {rel}")
    for rel in report.updated:
        click.echo(f"updated  {rel}")
    for rel in report.kept:
        click.echo(f"kept     {rel}")
    click.echo(f"Conductor project ready at {report.root}")


@cli.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print diagnostics as JSON.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@click.option("--no-cache", is_flag=True, help="Validate every file anew (by default an unchanged file is skipped).")
def validate_command(paths: tuple[Path, ...], as_json: bool, strict: bool, no_cache: bool) -> None:
    """Validate Conductor documents under PATHS (default: .conductor of this project).

    Finds policy.yaml, config.yaml, plan documents and *.task.json / *.result.json /
    *.provenance.json files and prints `file:line:col: severity code message` (1-based).
    Exit 1 when any error is found (or any warning with --strict): use it in CI or pre-commit.
    A task, result, provenance or plan file whose bytes, project policy and Conductor's rules are
    unchanged since it was last validated is not validated again (the cache is in the user's cache
    folder, never in the project); policy.yaml and config.yaml are always validated.
    """
    if not paths:
        root = api.find_project_root()
        paths = (ProjectLayout.at(root).conductor_dir,) if root else (Path("."),)
    results = api.validate_paths(paths, use_cache=not no_cache)
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    if as_json:
        emit_json({"files": [r.to_json() for r in results], "errors": errors, "warnings": warnings})
    else:
        for report in results:
            if report.error:
                click.echo(f"{report.path}: error {report.error}")
            for diag in report.diagnostics:
                click.echo(diag.format(str(report.path)))
        click.echo(f"{len(results)} file(s) checked: {errors} error(s), {warnings} warning(s)", err=True)
    if errors or (strict and warnings):
        raise SystemExit(EXIT_PROBLEMS)


@cli.command("policy")
@click.option("--show-origin", is_flag=True, help="Show the level, file and line each value came from.")
@click.option("--json", "as_json", is_flag=True, help="Print the effective policy as JSON (with origins).")
@click.option("--plan", "plan_id", help="Merge this plan's policy level over the project's.")
@click.option("--fork", "fork_id", help="Whose plan document (default: the merged fork, else main, else the first).")
@click.option("--step", "step_id", help="Also merge this step's level (needs --plan).")
def policy_command(show_origin: bool, as_json: bool, plan_id: str | None, fork_id: str | None,
                   step_id: str | None) -> None:
    """Show the effective policy: project, plan and step levels merged.

    Lists accumulate, limits can only be tightened unless a level says allow_loosen, and a
    protection is dropped only by file_rules.unprotect. Refused loosenings are listed.
    """
    eff = api.effective_policy(plan_id=plan_id, step_id=step_id, fork_id=fork_id).to_json(show_origin=True)
    if as_json:
        emit_json(eff)
        return

    def line(label: str, item: dict[str, Any]) -> str:
        origin = item["origin"]
        where = origin["level"] if not origin.get("file") else f"{origin['level']} {origin['file']}:{origin['line']}"
        return f"  {label}{item['value']}" + (f"    ({where})" if show_origin else "")

    out = ["global_constraints:", *(line("- ", item) for item in eff["global_constraints"]),
           "protected_patterns:", *(line("- ", item) for item in eff["file_rules"]["protected_patterns"])]
    if eff["file_rules"]["released_patterns"]:
        out.append("released (unprotected) patterns:")
        out.extend(line("- ", item) for item in eff["file_rules"]["released_patterns"])
    out.append("behavior:")
    out.extend(line(f"{name}: ", item) for name, item in eff["behavior"].items())
    if eff["verification"]:
        out.append("verification:")
        out.extend(line("- ", {**item, "value": f"{item['value']['name']}: {item['value']['run']}"})
                   for item in eff["verification"])
    click.echo("\n".join(out))
    for refusal in eff["refusals"]:
        o = refusal["origin"]
        click.echo(f"refused: {o['file']}:{o['line']}: {refusal['message']}", err=True)
