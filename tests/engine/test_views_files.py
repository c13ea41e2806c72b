"""A step's files as status shows them: each hand-off folder is listed once per fork, and a
listed name counts only when it exists as ``Path.exists`` says (a dangling symlink does not)."""

from __future__ import annotations

from pathlib import Path

from conductor.engine.views import ForkFiles, step_view
from conductor.journal.projection import StepState
from conductor.project.layout import ProjectLayout


def test_step_paths_come_from_one_listing_per_folder_and_match_path_exists(tmp_path: Path) -> None:
    layout = ProjectLayout.at(tmp_path)
    for folder in ("pending", "in_progress", "completed"):
        layout.state_dir("p1", "main", folder).mkdir(parents=True)
    task = layout.step_file("p1", "main", "in_progress", "step_001", ".task.json")
    task.write_text("{}")
    result = layout.step_file("p1", "main", "completed", "step_001", ".result.json")
    result.write_text("{}")
    dangling = layout.step_file("p1", "main", "completed", "step_001", ".provenance.json")
    dangling.symlink_to(tmp_path / "nowhere")
    files = ForkFiles(layout, "p1", "main")
    view = step_view(layout, "p1", StepState(fork_id="main", step_id="step_001", state="in_progress"), files)
    assert view.paths.task == str(task) and view.paths.result == str(result)
    assert view.paths.provenance is None  # a dangling symlink is no file, as before
    assert view.claimed  # its task is in in_progress/
    other = step_view(layout, "p1", StepState(fork_id="main", step_id="step_002"), files)
    assert other.paths.task is None and other.paths.result is None
    # a file that appears after the folder was listed is not seen by this listing, but by a new one
    late = layout.step_file("p1", "main", "pending", "step_002", ".task.json")
    late.write_text("{}")
    assert step_view(layout, "p1", StepState(fork_id="main", step_id="step_002")).paths.task == str(late)
