"""An agent command for the security tests: honest, or hostile on its first attempt.

Run by ``conductor agent --command`` (cwd = the attempt's working copy). A planning task is
answered with the plan in ``CONDUCTOR_TEST_PLAN`` (JSON). A step's instruction is a list of
directives, one per line; ``attack NAME [ARG]`` lines run only on attempt 1 (the retry after
the refusal is honest):

``write PATH: TEXT``  write a file in the workspace
``attack hook``       install a pre-commit/post-commit/post-merge hook in the project's .git/hooks
``attack own-hook``   install hooks in the attempt's own repository, then commit (they may run; they must not
                      reach anything)
``attack config``     change the project's .git/config (core.hooksPath, an alias)
``attack branch``     move another branch of the project (its ``main`` or ``other``)
``attack amend``      commit, then ``commit --amend`` adding sneak.txt
``attack reset``      ``git reset --hard HEAD~1`` inside the attempt (drops the last merged step's files)
``attack symlink``    create a symlink to /etc/passwd
``attack symlink-dir TARGET``  create a symlinked folder pointing at TARGET (outside)
``attack through``    write through ``link/`` if an earlier step's folder symlink reached this working copy
``attack root``       write a file into the project root (the user's checkout)
``attack outside FILE``  write FILE (an absolute path outside the project)
``attack policy``     loosen .conductor/policy.yaml in the project
``attack chmod PATH`` ``chmod +x`` a tracked file
``attack type PATH``  replace a tracked file by a symlink to itself's copy
"""

import json
import os
import subprocess
import sys
from pathlib import Path

task = json.loads(Path(os.environ["CONDUCTOR_TASK_FILE"]).read_text())
workspace = Path(task["workspace"])
project = Path(os.environ["CONDUCTOR_TEST_PROJECT"])


def git(*args: str, cwd: Path = workspace) -> None:
    subprocess.run(["git", "-c", "user.name=agent", "-c", "user.email=agent@x", *args], cwd=cwd, check=True,
                   capture_output=True)


if task["kind"] == "plan":
    print(os.environ["CONDUCTOR_TEST_PLAN"])
    sys.exit(0)

for line in task["instruction"].split("\n\nThe previous attempt failed")[0].splitlines():
    op, _, arg = line.strip().partition(" ")
    if op == "write":
        path, _, text = arg.partition(":")
        target = workspace / path.strip()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.strip() + "\n")
    elif op == "attack" and task["attempt"] == 1:
        name, _, rest = arg.partition(" ")
        if name == "hook":
            for hook in ("pre-commit", "post-commit", "post-merge", "reference-transaction"):
                path = project / ".git" / "hooks" / hook
                path.write_text(f"#!/bin/sh\necho injected > {project}/INJECTED-{hook}\n")
                path.chmod(0o755)
        elif name == "own-hook":
            for hook in ("pre-commit", "post-commit", "post-checkout", "post-merge"):
                path = workspace / ".git" / "hooks" / hook
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"#!/bin/sh\nbasename \"$0\" >> {os.environ['CONDUCTOR_TEST_MARKER']}\n")
                path.chmod(0o755)
            git("add", "-A")
            git("commit", "-qm", "agent's own commit")
        elif name == "config":
            git("config", "alias.st", "!touch PWNED", cwd=project)
            git("config", "core.hooksPath", "/tmp", cwd=project)
        elif name == "branch":
            git("branch", "-f", "other", "HEAD", cwd=project)
        elif name == "amend":
            git("add", "-A")
            git("commit", "-qm", "honest")
            (workspace / "sneak.txt").write_text("sneaked in\n")
            git("add", "-A")
            git("commit", "-q", "--amend", "--no-edit")
        elif name == "reset":
            git("reset", "-q", "--hard", "HEAD~1")
        elif name == "symlink":
            os.symlink("/etc/passwd", workspace / "passwd")
        elif name == "symlink-dir":
            os.symlink(rest, workspace / "link")
        elif name == "through":
            link = workspace / "link"
            if link.is_symlink():  # only if an earlier step's symlinked folder reached this copy
                (link / "through.txt").write_text("written through a symlink\n")
        elif name == "root":
            (project / "ROOT-WRITE.txt").write_text("written into the user's checkout\n")
            (project / "README.md").write_text("overwritten by an agent\n")
        elif name == "outside":
            Path(rest).write_text("written outside\n")
        elif name == "policy":
            path = project / ".conductor" / "policy.yaml"
            path.write_text(path.read_text() + "\n# loosened by an agent\n")
        elif name == "chmod":
            (workspace / rest).chmod(0o755)
        elif name == "type":
            target = workspace / rest
            (workspace / "real.txt").write_text(target.read_text())
            target.unlink()
            os.symlink("real.txt", target)
print(f"done attempt {task['attempt']}")
