import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from '../src/core/backoff';
import { PlanModel } from '../src/core/planModel';
import { resultMarkdown, statusMarkdown, stepDescription, summarizeValidation } from '../src/core/results';
import { statusBarContent } from '../src/core/statusText';

function planWith(states: string[]) {
  const m = new PlanModel();
  m.loadStatus({
    plans: [{ plan_id: 'p', goal: 'Goal', state: 'in_progress', forks: [{ fork_id: 'f', steps: states.map((state, i) => ({ step_id: `step_${i + 1}`, title: `S${i + 1}`, state, confidence: null, reason: null, paths: {} })) }] }],
  });
  return m.currentPlan();
}

describe('status bar text', () => {
  it('shows completed/total and failures', () => {
    assert.equal(statusBarContent(planWith(['completed', 'completed', 'completed', 'failed', 'pending'])).text, 'Conductor 3/5 ✓ 1 ⚠');
  });
  it('omits zero failures', () => {
    assert.equal(statusBarContent(planWith(['completed', 'in_progress'])).text, 'Conductor 1/2 ✓');
  });
  it('shows approvals waiting', () => {
    const c = statusBarContent(planWith(['completed', 'waiting_approval']));
    assert.equal(c.text, 'Conductor 1/2 ✓ 1 ?');
    assert.match(c.tooltip, /1 waiting for approval/);
  });
  it('has texts without a plan and without a server', () => {
    assert.equal(statusBarContent(undefined).text, 'Conductor');
    assert.equal(statusBarContent(undefined, 'missing').text, 'Conductor ⚠');
    assert.match(statusBarContent(undefined, 'starting').tooltip, /starting/);
  });
});

describe('results', () => {
  it('summarises validation results of any nesting', () => {
    const r = { files: [{ path: 'a', diagnostics: [{ severity: 'error', message: 'x' }, { severity: 'warning', message: 'y' }] }, { path: 'b', diagnostics: [] }] };
    const s = summarizeValidation(r);
    assert.deepEqual([s.files, s.errors, s.warnings], [2, 1, 1]);
    assert.equal(s.message, 'Conductor: 1 error, 1 warning in 2 files.');
    assert.equal(summarizeValidation({ files: 3, diagnostics: [] }).message, 'Conductor: no problems found in 3 files.');
    assert.equal(summarizeValidation([{ severity: 1, message: 'a' }, { severity: 1, message: 'b' }]).errors, 2);
    assert.equal(summarizeValidation(null).message, 'Conductor: no problems found.');
  });
  it('renders results as Markdown', () => {
    assert.equal(resultMarkdown('Policy', { a: 1 }), '# Policy\n\n```json\n{\n  "a": 1\n}\n```\n');
    assert.equal(resultMarkdown('Explain', { markdown: '# Step 1\nwhy' }), '# Step 1\nwhy');
    assert.equal(resultMarkdown('Explain', 'plain'), '# Explain\n\nplain\n');
    assert.match(resultMarkdown('X', null), /no result/);
  });
  it('renders status as Markdown', () => {
    const m = new PlanModel();
    assert.match(statusMarkdown(m.getPlans()), /No plans yet/);
    m.applyStepChanged({ plan_id: 'p', fork_id: 'f', step_id: 's1', title: 'Do it', state: 'failed', confidence: { score: 0.42, level: 'low' }, reason: 'diff too large', paths: {} });
    const md = statusMarkdown(m.getPlans());
    assert.match(md, /✗ `s1` Do it — \*failed\* — confidence 0\.42 \(low\) — diff too large/);
  });
  it('describes steps', () => {
    assert.equal(stepDescription('completed', { score: 0.912, level: 'high' }), '0.91 high');
    assert.equal(stepDescription('waiting_approval', { score: 0.3, level: 'low' }), '0.30 low · needs approval');
    assert.equal(stepDescription('pending', null), '');
  });
});

describe('restart back-off', () => {
  it('doubles the delay and gives up after 5 crashes in 3 minutes', () => {
    const b = new Backoff();
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => b.next(1000 * i)), [1000, 2000, 4000, 8000, 16000]);
    assert.equal(b.next(5000), undefined);
  });
  it('forgets crashes older than the window', () => {
    const b = new Backoff(1000, 30000, 2, 60000);
    assert.equal(b.next(0), 1000);
    assert.equal(b.next(10), 2000);
    assert.equal(b.next(100_000), 1000);
  });
});
