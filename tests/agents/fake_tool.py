"""A stand-in coding-agent CLI for the preset tests: a real process that acts on its prompt.

Run as ``python fake_tool.py --message-file PROMPT [FILES…]`` (or with the prompt on stdin). It
reads a JSON script from ``FAKE_TOOL_SCRIPT``: ``{"plan": <plan document>, "step_001": {"write":
{path: text}, "print": text, "env_names_to": path, "exit": code}, …}``. For a planning prompt it
prints the plan wrapped in prose and a ```json fence, as models answer; for a step it does what
the step's entry says (paths may be absolute: writing outside the working copy is an attack).
"""

import json
import os
import re
import sys
from pathlib import Path

args = sys.argv[1:]
prompt = Path(args[args.index("--message-file") + 1]).read_text() if "--message-file" in args else sys.stdin.read()
script = json.loads(Path(os.environ["FAKE_TOOL_SCRIPT"]).read_text())
if "Plan this goal" in prompt:
    print("Here is my plan.\n\n```json\n" + json.dumps(script["plan"], indent=2) + "\n```\n\nGood luck!")
    sys.exit(0)
step = re.search(r"## Step (step_\d+)", prompt)
entry = script.get(step.group(1) if step else "", {})
for path, text in entry.get("write", {}).items():
    try:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        print(f"could not write {path}: {exc}", file=sys.stderr)
if "env_names_to" in entry:
    Path(entry["env_names_to"]).write_text("\n".join(sorted(os.environ)) + "\n")
if "print_env" in entry:
    print(f"{entry['print_env']}={os.environ.get(entry['print_env'], '')}")
sys.exit(int(entry.get("exit", 0)))
