"""The engine API, called as the doors call it, on projects the real engine built: typed results,
refusals with codes, the editor's unsaved policy, plan documents by id."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor.engine import api
from tests.support.fixtures import Built


def test_refusals_carry_a_code_and_say_where(demo_project: Built, tmp_path: Path) -> None:
    with pytest.raises(api.NotAProject) as outside:
        api.status(tmp_path)
    assert outside.value.code == "project/not-found" and str(tmp_path.resolve()) in str(outside.value)
    with pytest.raises(api.NoSuchPlan) as plan:
        api.explain_step(demo_project.root, "step_001", "nope")
    assert plan.value.code == "plan/not-found" and demo_project.plan_id in str(plan.value)
    with pytest.raises(api.NoSuchStep) as step:
        api.explain_step(demo_project.root, "step_042", demo_project.plan_id)
    assert step.value.code == "step/not-found" and "step_001, step_002" in str(step.value)
    with pytest.raises(api.Conflict) as waiting:
        api.approve_step(demo_project.root, "step_001", demo_project.plan_id)
    assert waiting.value.code == "step/not-waiting" and isinstance(waiting.value, api.EngineError)


def test_plan_documents_by_id_and_the_merged_forks_by_default(demo_project: Built) -> None:
    document = api.plan_document(demo_project.root, demo_project.plan_id[:4])
    assert (document.plan_id, document.fork_id) == (demo_project.plan_id, "main")
    assert document.path == demo_project.root / ".conductor" / "plans" / demo_project.plan_id / "main.plan.json"
    assert [s.id for s in document.plan.steps] == ["step_001", "step_002"]
    with pytest.raises(api.NotFound) as missing:
        api.plan_document(demo_project.root, demo_project.plan_id, "f9")
    assert missing.value.code == "plan/no-document" and "known: main" in str(missing.value)


def test_the_editors_unsaved_policy_is_the_projects_context(demo_project: Built) -> None:
    disk = api.project_context(demo_project.root)
    assert disk.source == "disk" and disk.policy is not None and "*.lock" in disk.context.protected_patterns
    disk_text = (demo_project.root / ".conductor" / "policy.yaml").read_text(encoding="utf-8")
    buffer = disk_text.replace('    - "*.lock"\n', '    - "*.lock"\n    - "hello.py"\n')
    edited = api.project_context(demo_project.root, buffer)
    assert edited.source == "buffer" and "hello.py" in edited.context.protected_patterns
    assert "hello.py" not in api.project_context(demo_project.root).context.protected_patterns  # disk unchanged
    broken = api.project_context(demo_project.root, "behavior: {max_diff_lines: lots}\n")
    assert broken.policy is None and broken.error and "policy/type" in broken.error
    assert broken.context.protected_patterns == ()  # judged by the defaults until the policy is valid


def test_status_and_steps_are_the_same_views(demo_project: Built) -> None:
    status = api.status(demo_project.root)
    (plan,) = status.plans
    assert [s.to_json() for s in plan.forks[0].steps] == [s.to_json() for s in api.steps(demo_project.root)]
    assert all(s.state == "completed" and s.waiting_for is None for s in api.steps(demo_project.root))
    assert api.status_text(status).splitlines()[0].startswith(f"plan {demo_project.plan_id} [finished (completed)]")
