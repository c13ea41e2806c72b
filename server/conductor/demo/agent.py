"""A scripted executor for ``conductor agent --command "python -m conductor.demo.agent"``.

It follows the command contract of the reference agent: the task arrives in ``CONDUCTOR_*``
environment variables, the working directory is the task's workspace, exit code 0 means
done, and for a planning task the plan document is printed on stdout. It always plans the
same small project (a greeting module and its test) so the demo needs no model and no key.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

PLAN = {
    "summary": "A greeting module, then its test.",
    "steps": [
        {
            "id": "step_001",
            "title": "Add the greeting module",
            "instruction": "Create hello.py with greet(name) returning 'Hello, <name>!' and a main that prints "
            "greet('world').",
            "allowed_files": ["hello.py"],
            "depends_on": [],
            "rationale": "Everything else imports it.",
            "estimated_confidence": 0.9,
        },
        {
            "id": "step_002",
            "title": "Test the greeting",
            "instruction": "Create tests/test_hello.py checking greet('Ada') == 'Hello, Ada!'.",
            "allowed_files": ["tests/test_hello.py"],
            "depends_on": ["step_001"],
            "rationale": "The verification command runs it.",
            "estimated_confidence": 0.85,
        },
    ],
}

FILES = {
    "step_001": {
        "hello.py": 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n\n\n'
        'if __name__ == "__main__":\n    print(greet("world"))\n'
    },
    "step_002": {
        "tests/test_hello.py": "import sys\nfrom pathlib import Path\n\n"
        "sys.path.insert(0, str(Path(__file__).resolve().parents[1]))\n\nfrom hello import greet\n\n\n"
        "def test_greet():\n    assert greet(\"Ada\") == \"Hello, Ada!\"\n\n\n"
        "if __name__ == \"__main__\":\n    test_greet()\n    print(\"ok\")\n"
    },
}


def main() -> int:
    kind = os.environ.get("CONDUCTOR_TASK_KIND", "step")
    if kind == "plan":
        instruction = os.environ.get("CONDUCTOR_INSTRUCTION", "")
        goal = re.search(r"Goal: (.*)", instruction)
        strategy = re.search(r"Strategy: ([^ ]+)", instruction)
        plan = {"goal": goal.group(1).strip() if goal else "demo", "strategy": strategy.group(1) if strategy else
                "default", **PLAN}
        print(json.dumps(plan))
        return 0
    step = os.environ["CONDUCTOR_TASK_ID"]
    files = FILES.get(step)
    if files is None:
        print(f"the demo agent has no script for {step}", file=sys.stderr)
        return 1
    for rel, content in files.items():
        path = Path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
