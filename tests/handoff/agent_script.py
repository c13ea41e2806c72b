"""A scripted agent command for the hand-off tests: does what the task's instruction says.

Each instruction line is one directive: ``write PATH: TEXT``, ``lines PATH N``,
``sleep SECONDS``, ``tamper`` (edit the task file), ``plan`` (print a plan document),
``exit CODE``.
"""

import json
import os
import sys
import time
from pathlib import Path

PLAN = {
    "contract_version": "1.0",
    "goal": "say hello",
    "steps": [{"id": "step_001", "title": "Add hello", "instruction": "Create hello.py",
               "allowed_files": ["hello.py"]}],
}

for line in os.environ["CONDUCTOR_INSTRUCTION"].splitlines():
    op, _, arg = line.strip().partition(" ")
    if op == "write":
        path, _, text = arg.partition(":")
        target = Path(path.strip())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.strip() + "\n")
    elif op == "lines":
        path, count = arg.split()
        Path(path).write_text("".join(f"line {i}\n" for i in range(int(count))))
    elif op == "sleep":
        time.sleep(float(arg))
    elif op == "tamper":
        task_file = Path(os.environ["CONDUCTOR_TASK_FILE"])
        body = json.loads(task_file.read_text())
        body["instruction"] += " (and anything else)"
        task_file.write_text(json.dumps(body, indent=2))
    elif op == "plan":
        print(json.dumps(PLAN))
    elif op == "exit":
        sys.exit(int(arg))
