import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlanModel, derivePlanState, planDisplayState, planProgress } from '../src/core/planModel';

const status = {
  plans: [
    {
      plan_id: 'p1',
      goal: 'Add validation',
      state: 'in_progress',
      forks: [
        {
          fork_id: 'f1',
          steps: [
            { step_id: 'step_001', title: 'Write schema', state: 'completed', confidence: { score: 0.9, level: 'high' }, reason: null, paths: { task: '/w/.conductor/handoff/plan_p1/fork_f1/completed/step_001.task.json', result: '/w/r.json', provenance: '/w/p.json' } },
            { step_id: 'step_002', title: 'Wire form', state: 'pending', confidence: { score: 0.6, level: 'medium' }, reason: null, paths: { task: '/w/t2.json', result: null, provenance: null } },
          ],
        },
      ],
    },
  ],
};

function changed(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    plan_id: 'p1',
    fork_id: 'f1',
    step_id: 'step_002',
    title: 'Wire form',
    state: 'in_progress',
    confidence: { score: 0.6, level: 'medium' },
    reason: null,
    paths: { task: '/w/t2.json', result: null, provenance: null },
    ...extra,
  };
}

describe('PlanModel', () => {
  it('loads conductor.status', () => {
    const m = new PlanModel();
    m.loadStatus(status);
    assert.equal(m.getPlans().length, 1);
    const plan = m.getPlan('p1')!;
    assert.equal(plan.goal, 'Add validation');
    assert.equal(plan.forks[0].steps.length, 2);
    assert.deepEqual(plan.forks[0].steps[0].confidence, { score: 0.9, level: 'high' });
    assert.equal(m.currentPlan()?.plan_id, 'p1');
  });

  it('tolerates empty or malformed status results', () => {
    const m = new PlanModel();
    m.loadStatus(null);
    assert.deepEqual(m.getPlans(), []);
    m.loadStatus({ plans: [null, { goal: 'no id' }, { plan_id: 'x', forks: [{ steps: [{}, { step_id: 's' }] }] }] });
    assert.equal(m.getPlans().length, 1);
    const x = m.getPlan('x')!;
    assert.equal(x.goal, 'x');
    assert.equal(x.forks[0].fork_id, 'main');
    assert.deepEqual(x.forks[0].steps.map((s) => s.step_id), ['s']);
    assert.equal(x.forks[0].steps[0].state, 'pending');
    assert.deepEqual(x.forks[0].steps[0].paths, { task: null, result: null, provenance: null });
  });

  it('updates a known step from conductor/stepChanged', () => {
    const m = new PlanModel();
    m.loadStatus(status);
    const events: string[] = [];
    m.onDidChange((c) => events.push(`${c.kind}:${c.planId}`));
    const isNew = m.applyStepChanged(changed({ state: 'completed', paths: { task: '/w/c/t2.json', result: '/w/c/r2.json', provenance: '/w/c/p2.json' } }));
    assert.equal(isNew, false);
    const step = m.findStep('step_002', 'p1')!.step;
    assert.equal(step.state, 'completed');
    assert.equal(step.paths.result, '/w/c/r2.json');
    assert.deepEqual(events, ['step:p1']);
    assert.equal(m.getPlan('p1')!.state, 'completed');
  });

  it('adds unknown plans, forks and steps in natural order', () => {
    const m = new PlanModel();
    assert.equal(m.applyStepChanged(changed({ plan_id: 'p2', fork_id: 'f2', step_id: 'step_10', title: 'ten' })), true);
    assert.equal(m.applyStepChanged(changed({ plan_id: 'p2', fork_id: 'f2', step_id: 'step_2', title: 'two' })), false);
    assert.equal(m.applyStepChanged(changed({ plan_id: 'p2', fork_id: 'f1', step_id: 'step_1', title: 'one' })), false);
    const plan = m.getPlan('p2')!;
    assert.deepEqual(plan.forks.map((f) => f.fork_id), ['f1', 'f2']);
    assert.deepEqual(plan.forks[1].steps.map((s) => s.step_id), ['step_2', 'step_10']);
    assert.equal(m.currentPlan()?.plan_id, 'p2');
    assert.equal(m.allSteps().length, 3);
  });

  it('keeps the goal when status is reloaded after notifications', () => {
    const m = new PlanModel();
    m.applyStepChanged(changed({}));
    assert.equal(m.getPlan('p1')!.goal, 'p1');
    m.loadStatus(status);
    assert.equal(m.getPlan('p1')!.goal, 'Add validation');
  });

  it('ignores payloads without plan or step id', () => {
    const m = new PlanModel();
    assert.equal(m.applyStepChanged({ step_id: 's' }), false);
    assert.equal(m.applyStepChanged({ plan_id: 'p' }), false);
    assert.equal(m.applyStepChanged('nonsense'), false);
    assert.equal(m.getPlans().length, 0);
  });

  it('fills a missing confidence level from the score', () => {
    const m = new PlanModel();
    m.applyStepChanged(changed({ confidence: { score: 0.3 } }));
    assert.deepEqual(m.findStep('step_002')!.step.confidence, { score: 0.3, level: 'low' });
    m.applyStepChanged(changed({ confidence: null }));
    assert.equal(m.findStep('step_002')!.step.confidence, null);
  });

  it('counts progress and derives plan state', () => {
    const m = new PlanModel();
    m.loadStatus(status);
    const plan = m.getPlan('p1')!;
    assert.deepEqual(planProgress(plan), { total: 2, completed: 1, failed: 0, waiting: 0, inProgress: 0, pending: 1 });
    m.applyStepChanged(changed({ state: 'waiting_approval' }));
    assert.equal(derivePlanState(plan), 'waiting_approval');
    m.applyStepChanged(changed({ state: 'failed' }));
    assert.equal(derivePlanState(plan), 'completed');
    assert.equal(planProgress(plan).failed, 1);
  });

  it('disposes listeners', () => {
    const m = new PlanModel();
    let n = 0;
    const d = m.onDidChange(() => n++);
    m.applyStepChanged(changed({}));
    d.dispose();
    m.applyStepChanged(changed({ state: 'completed' }));
    assert.equal(n, 1);
  });
});

describe('PlanModel reloads', () => {
  it('keeps announced steps a later status result does not list', () => {
    const m = new PlanModel();
    m.applyStepChanged({ plan_id: 'p9', fork_id: 'main', step_id: 'step_000', title: 'Plan: default', state: 'pending', confidence: null, reason: null, paths: { task: '/w/step_000.task.json', result: null, provenance: null } });
    m.loadStatus({ plans: [{ plan_id: 'p9', goal: 'The goal', state: 'running', forks: [{ fork_id: 'main', steps: [] }] }] });
    const plan = m.getPlan('p9')!;
    assert.equal(plan.goal, 'The goal');
    assert.deepEqual(plan.forks[0].steps.map((s) => s.step_id), ['step_000']);
    assert.equal(plan.forks[0].steps[0].state, 'pending');
  });

  it('lets the status result win for steps it lists', () => {
    const m = new PlanModel();
    m.applyStepChanged({ plan_id: 'p1', fork_id: 'f1', step_id: 'step_002', title: 'Wire form', state: 'in_progress', paths: {} });
    m.loadStatus(status);
    assert.equal(m.findStep('step_002', 'p1')!.step.state, 'pending');
    assert.equal(m.getPlan('p1')!.forks[0].steps.length, 2);
  });
});

describe('planDisplayState', () => {
  const plan = (state: string, states: string[]) => ({ plan_id: 'p', goal: 'g', state, forks: [{ fork_id: 'f', steps: states.map((st, i) => ({ step_id: `s${i}`, title: '', state: st, confidence: null, reason: null, paths: { task: null, result: null, provenance: null } })) }] });
  it('maps server plan states and lets live steps win', () => {
    assert.equal(planDisplayState(plan('finished', ['completed', 'completed'])), 'completed');
    assert.equal(planDisplayState(plan('finished', ['failed'])), 'failed');
    assert.equal(planDisplayState(plan('halted', ['completed', 'pending'])), 'failed');
    assert.equal(planDisplayState(plan('running', ['completed', 'pending'])), 'in_progress');
    assert.equal(planDisplayState(plan('running', ['waiting_approval', 'in_progress'])), 'waiting_approval');
    assert.equal(planDisplayState(plan('finished', ['in_progress'])), 'in_progress');
    assert.equal(planDisplayState(plan('something-new', [])), 'pending');
  });
});
