import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, policyMarkdown, readPlansView, statusBarContent, statusMarkdown, stepStateLabel, waitingMessage } from '../src/core/planView';
import { firstLine, mentionsPolicy } from '../src/core/results';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const WAITING = {
  plans: [
    {
      plan_id: 'p1', goal: 'Add **bold** things', mode: 'handoff', state: 'running', display_state: 'waiting_for_agent',
      waiting: { waiting_for: 'agent', fork_id: 'main', step_id: 'step_000', title: 'Planning (strategy: default)', since: '2026-01-01T10:00:00+00:00', task: '/w/.conductor/handoff/plan_p1/fork_main/pending/step_000.task.json' },
      forks: [{ fork_id: 'main', strategy: '', steps: [{ step_id: 'step_000', title: 'Planning (strategy: default)', kind: 'plan', state: 'in_progress', waiting_for: 'agent', since: '2026-01-01T10:00:00+00:00', paths: { task: '/t' } }] }],
    },
  ],
  projects: [{ root: '/w', mode: 'llm', api_key_env: 'GEMINI_API_KEY', api_key_set: false }],
};

describe('the server plan view in words', () => {
  it('reads the server answer and tolerates missing fields', () => {
    const v = readPlansView(WAITING);
    assert.equal(v.plans[0].waiting?.step_id, 'step_000');
    assert.equal(v.projects[0].api_key_set, false);
    assert.deepEqual(readPlansView({ plans: [{}, null, { plan_id: 'x', forks: [{ steps: [{}, { step_id: 's' }] }] }] }).plans[0].forks[0].steps.map((s) => s.step_id), ['s']);
    assert.deepEqual(readPlansView(undefined), { plans: [], projects: [] });
  });

  it('durations read like "1 m 20 s"', () => {
    assert.equal(formatDuration(5_400), '5 s');
    assert.equal(formatDuration(80_000), '1 m 20 s');
    assert.equal(formatDuration(3_900_000), '1 h 5 m');
  });

  it('the waiting progress line names the step and how long', () => {
    const v = readPlansView(WAITING);
    assert.equal(waitingMessage(v.plans[0].waiting!, T0 + 80_000), 'waiting for an agent to claim step_000 (1 m 20 s)');
    assert.equal(stepStateLabel(v.plans[0].forks[0].steps[0]), 'waiting for an agent');
  });

  it('the status bar tells running, waiting for agent, waiting for approval, failed and done apart', () => {
    const plan = readPlansView(WAITING).plans[0];
    assert.match(statusBarContent(plan, 'running', T0 + 5000).text, /waiting for agent \(step_000, 5 s\)/);
    const texts = ['running', 'waiting_for_approval', 'failed', 'done', 'halted'].map((s) => statusBarContent({ ...plan, display_state: s, waiting: null }, 'running', T0).text);
    assert.deepEqual(texts.map((t) => t.replace(/\$\([^)]*\) /, '')), ['Conductor: running', 'Conductor: waiting for approval', 'Conductor: failed', 'Conductor: done', 'Conductor: halted']);
    assert.match(statusBarContent(undefined, 'missing', T0).text, /not installed/);
  });

  it('the status document escapes the goal and renders a table, not raw state names', () => {
    const md = statusMarkdown(readPlansView(WAITING), T0 + 80_000);
    assert.match(md, /Add \\\*\\\*bold\\\*\\\* things/);
    assert.match(md, /\| `step_000` \| Planning \(strategy: default\) \| waiting for an agent \(1 m 20 s\) \|/);
  });

  it('the effective policy links every value to its file and line', () => {
    const md = policyMarkdown({ ok: true, policy: { behavior: { max_diff_lines: { value: 500, origin: { level: 'project', file: '.conductor/policy.yaml', line: 20 } } }, global_constraints: [{ value: 'Be nice', origin: { level: 'project', file: '.conductor/policy.yaml', line: 8 } }] } }, (f, l) => `file:///w/${f}#L${l}`);
    assert.match(md, /\*\*max\\_diff\\_lines\*\*: `500` — \*project\* · \[\.conductor\/policy\.yaml:20\]\(file:\/\/\/w\/\.conductor\/policy\.yaml#L20\)/);
    assert.match(md, /- `Be nice` — \*project\* · \[\.conductor\/policy\.yaml:8\]/);
    assert.doesNotMatch(md, /```json/);
    assert.match(policyMarkdown({ ok: false, error: 'bad policy' }, () => ''), /cannot be used: bad policy/);
  });
});

describe('error toasts', () => {
  it('keep the whole first line and know when the policy is at fault', () => {
    const msg = 'Conductor build p1 failed: PolicyError: .conductor/policy.yaml has 3 errors (first: line 5: invalid glob)\n  line 6: …';
    assert.equal(firstLine(msg).first, 'Conductor build p1 failed: PolicyError: .conductor/policy.yaml has 3 errors (first: line 5: invalid glob)');
    assert.equal(firstLine(msg).rest, 'line 6: …');
    assert.equal(mentionsPolicy(msg), true);
    assert.equal(mentionsPolicy('git failed'), false);
  });
});
