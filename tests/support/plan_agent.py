"""A scripted agent command (``conductor agent --command "python plan_agent.py '<plan JSON>'"``) for tests.

For a planning task it prints the plan document given as its argument (goal and strategy
taken from the task's instruction); the plan travels on the command line because the agent
runs in a sandbox that sees only its working copy and the project. For a step, each line of
the instruction is a directive: ``write PATH: TEXT`` writes a file in the workspace,
``sleep SECONDS`` waits, ``exit CODE`` ends with that exit code (non-zero: the agent reports
the step failed). Anything else is prose.
"""

import json
import os
import re
import sys
import time
from pathlib import Path


def main() -> int:
    if os.environ.get("CONDUCTOR_TASK_KIND") == "plan":
        plan = json.loads(sys.argv[1])
        instruction = os.environ.get("CONDUCTOR_INSTRUCTION", "")
        goal = re.search(r"Goal: (.*)", instruction)
        strategy = re.search(r"Strategy: ([^ ]+)", instruction)
        print(json.dumps({"goal": goal.group(1).strip() if goal else "test", "strategy": strategy.group(1)
                          if strategy else "default", **plan}))
        return 0
    for line in os.environ.get("CONDUCTOR_INSTRUCTION", "").splitlines():
        op, _, arg = line.strip().partition(" ")
        if op == "write":
            path, _, text = arg.partition(":")
            target = Path(path.strip())
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text.strip() + "\n", encoding="utf-8")
        elif op == "sleep":
            time.sleep(float(arg))
        elif op == "exit":
            return int(arg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
