#!/usr/bin/env bash
# The main job on the embedded default: no API key, handoff mode, the reference agent.
# A fresh project is planned and built while `conductor agent` picks up the task files.
set -euo pipefail
CONDUCTOR="${CONDUCTOR:-conductor}"
DEMO_DIR="${DEMO_DIR:-$(mktemp -d)/conductor-demo}"
mkdir -p "$DEMO_DIR"
cd "$DEMO_DIR"
echo "== conductor init ($DEMO_DIR)"
"$CONDUCTOR" init .
cat >> .conductor/policy.yaml <<'YAML'

verification:
  - name: greeting test
    run: python tests/test_hello.py || python hello.py
    timeout_seconds: 60
YAML
"$CONDUCTOR" validate
echo "== conductor agent (the reference executor, scripted: no model needed)"
"$CONDUCTOR" agent --command "${PYTHON:-python3} -m conductor.demo.agent" --idle-exit 20 --name demo-agent &
AGENT=$!
trap 'kill $AGENT 2>/dev/null || true' EXIT
echo "== conductor build"
"$CONDUCTOR" build "Create a greeting module with a test"
echo "== conductor status"
"$CONDUCTOR" status
echo "== conductor explain step_002"
"$CONDUCTOR" explain step_002
echo "== conductor verify"
"$CONDUCTOR" verify
echo "== conductor handoff-metrics"
"$CONDUCTOR" handoff-metrics
echo "== git log"
git log --oneline --graph -n 6
echo "demo project: $DEMO_DIR"
