"""A wheel built from this tree, installed in a fresh venv outside the repository, validates.

This proves the schemas ship inside the wheel (``conductor/_schemas``) and that nothing
reads files from the source checkout at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("conductor_runtime-*.whl")
    return built


def test_the_wheel_contains_the_schemas_and_templates(wheel: Path):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for kind in ("policy", "config", "task", "result", "provenance", "plan"):
        assert f"conductor/_schemas/{kind}.schema.json" in names
    assert "conductor/project/templates/policy.yaml" in names


def test_a_fresh_venv_outside_the_repo_can_validate(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=600, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(py), "-c", "import conductor, sys; print(conductor.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert str(env_dir) in where and str(REPO) not in where
    conductor = env_dir / "bin" / "conductor"
    subprocess.run([str(conductor), "init", "proj"], cwd=work, check=True, capture_output=True, env=env)
    ok = subprocess.run(
        [str(conductor), "validate", "proj/.conductor"], cwd=work, capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (work / "proj" / ".conductor" / "policy.yaml").write_text("behavior:\n  max_dif_lines: 5\n")
    bad = subprocess.run(
        [str(conductor), "validate", "proj/.conductor"], cwd=work, capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1
    assert "policy.yaml:2:3: error policy/unknown-key" in bad.stdout
