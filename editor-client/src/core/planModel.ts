/**
 * The plan → fork → step model behind the Conductor view and the status bar.
 *
 * Pure (no `vscode` import) so it can be unit-tested with node's test runner. Filled once
 * from the `conductor.status` command and then kept live from the server's
 * `conductor/stepChanged` notifications.
 */

export const STEP_STATES = ['pending', 'in_progress', 'waiting_approval', 'completed', 'failed'] as const;
export type StepState = (typeof STEP_STATES)[number];

export interface Confidence {
  score: number;
  level: 'high' | 'medium' | 'low' | string;
}

export interface StepPaths {
  task: string | null;
  result: string | null;
  provenance: string | null;
}

export interface Step {
  step_id: string;
  title: string;
  state: StepState | string;
  confidence: Confidence | null;
  reason: string | null;
  paths: StepPaths;
}

export interface Fork {
  fork_id: string;
  steps: Step[];
}

export interface Plan {
  plan_id: string;
  goal: string;
  state: string;
  forks: Fork[];
}

/** Payload of the `conductor/stepChanged` notification. */
export interface StepChanged extends Step {
  plan_id: string;
  fork_id: string;
}

export interface StatusResult {
  plans: Plan[];
}

export interface Progress {
  total: number;
  completed: number;
  failed: number;
  waiting: number;
  inProgress: number;
  pending: number;
}

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? fallback : String(value);
}

function normConfidence(value: unknown): Confidence | null {
  if (!value || typeof value !== 'object') {
    return null;
  }
  const v = value as Record<string, unknown>;
  const score = typeof v.score === 'number' ? v.score : Number(v.score);
  if (!Number.isFinite(score)) {
    return null;
  }
  return { score, level: str(v.level, levelOf(score)) };
}

/** HIGH ≥ 0.8, MEDIUM 0.5–0.8, LOW < 0.5 (DESIGN.md "Confidence"). */
export function levelOf(score: number): 'high' | 'medium' | 'low' {
  return score >= 0.8 ? 'high' : score >= 0.5 ? 'medium' : 'low';
}

function normPaths(value: unknown): StepPaths {
  const v = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const p = (x: unknown): string | null => (typeof x === 'string' && x.length > 0 ? x : null);
  return { task: p(v.task), result: p(v.result), provenance: p(v.provenance) };
}

/** Coerces one step object from the wire (tolerant of missing fields). */
export function normStep(value: unknown): Step | undefined {
  if (!value || typeof value !== 'object') {
    return undefined;
  }
  const v = value as Record<string, unknown>;
  const stepId = str(v.step_id);
  if (!stepId) {
    return undefined;
  }
  return {
    step_id: stepId,
    title: str(v.title, stepId),
    state: str(v.state, 'pending'),
    confidence: normConfidence(v.confidence),
    reason: typeof v.reason === 'string' ? v.reason : null,
    paths: normPaths(v.paths),
  };
}

/** Orders step ids naturally (step_2 before step_10). */
function compareIds(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true });
}

export type ChangeListener = (change: { planId?: string; kind: 'reset' | 'step' }) => void;

export class PlanModel {
  private plans = new Map<string, Plan>();
  private listeners: ChangeListener[] = [];
  /** The plan the user most likely cares about: the one that changed last. */
  private currentPlanId: string | undefined;
  /**
   * Latest notification per step. `conductor.status` is a projection of the plans' journals
   * and may not (yet) list every step the server has announced (a planning task, say), so a
   * reload keeps announced steps it does not mention instead of dropping them.
   */
  private announced = new Map<string, StepChanged>();

  onDidChange(listener: ChangeListener): { dispose(): void } {
    this.listeners.push(listener);
    return {
      dispose: () => {
        this.listeners = this.listeners.filter((l) => l !== listener);
      },
    };
  }

  private fire(change: { planId?: string; kind: 'reset' | 'step' }): void {
    for (const l of [...this.listeners]) {
      l(change);
    }
  }

  /** Replaces the whole model with a `conductor.status` result. Unknown shapes give an empty model. */
  loadStatus(result: unknown): void {
    this.plans.clear();
    const plans = result && typeof result === 'object' ? (result as Record<string, unknown>).plans : undefined;
    if (Array.isArray(plans)) {
      for (const raw of plans) {
        if (!raw || typeof raw !== 'object') {
          continue;
        }
        const r = raw as Record<string, unknown>;
        const planId = str(r.plan_id);
        if (!planId) {
          continue;
        }
        const forks: Fork[] = [];
        if (Array.isArray(r.forks)) {
          for (const f of r.forks) {
            if (!f || typeof f !== 'object') {
              continue;
            }
            const fr = f as Record<string, unknown>;
            const steps = Array.isArray(fr.steps)
              ? fr.steps.map(normStep).filter((s): s is Step => s !== undefined)
              : [];
            forks.push({ fork_id: str(fr.fork_id, 'main'), steps });
          }
        }
        this.plans.set(planId, { plan_id: planId, goal: str(r.goal, planId), state: str(r.state, 'pending'), forks });
      }
    }
    for (const payload of this.announced.values()) {
      const known = this.plans.get(payload.plan_id)?.forks.find((f) => f.fork_id === payload.fork_id)?.steps.some((st) => st.step_id === payload.step_id);
      if (!known) {
        this.upsert(payload, false);
      }
    }
    if (this.currentPlanId === undefined || !this.plans.has(this.currentPlanId)) {
      const all = [...this.plans.keys()];
      this.currentPlanId = all.length > 0 ? all[all.length - 1] : undefined;
    }
    this.fire({ kind: 'reset' });
  }

  /**
   * Applies one `conductor/stepChanged` notification. Returns true when it introduced a plan
   * the model did not know (the caller may then fetch `conductor.status` once for its goal).
   */
  applyStepChanged(payload: unknown): boolean {
    if (!payload || typeof payload !== 'object') {
      return false;
    }
    const p = payload as Record<string, unknown>;
    const planId = str(p.plan_id);
    const step = normStep(p);
    if (!planId || !step) {
      return false;
    }
    const change: StepChanged = { ...step, plan_id: planId, fork_id: str(p.fork_id, 'main') };
    this.announced.set(`${change.plan_id}\u0000${change.fork_id}\u0000${change.step_id}`, change);
    const newPlan = this.upsert(change, true);
    this.currentPlanId = planId;
    this.fire({ planId, kind: 'step' });
    return newPlan;
  }

  /** Puts one step into the model; true when its plan was new. */
  private upsert(change: StepChanged, derive: boolean): boolean {
    const { plan_id: planId, fork_id: forkId, ...rest } = change;
    const step: Step = { ...rest, paths: { ...rest.paths } };
    let newPlan = false;
    let plan = this.plans.get(planId);
    if (!plan) {
      plan = { plan_id: planId, goal: planId, state: 'in_progress', forks: [] };
      this.plans.set(planId, plan);
      newPlan = true;
    }
    let fork = plan.forks.find((f) => f.fork_id === forkId);
    if (!fork) {
      fork = { fork_id: forkId, steps: [] };
      plan.forks.push(fork);
      plan.forks.sort((a, b) => compareIds(a.fork_id, b.fork_id));
    }
    const i = fork.steps.findIndex((s) => s.step_id === step.step_id);
    if (i >= 0) {
      fork.steps[i] = step;
    } else {
      fork.steps.push(step);
      fork.steps.sort((a, b) => compareIds(a.step_id, b.step_id));
    }
    if (derive || newPlan) {
      plan.state = derivePlanState(plan);
    }
    return newPlan;
  }

  getPlans(): Plan[] {
    return [...this.plans.values()];
  }

  getPlan(planId: string): Plan | undefined {
    return this.plans.get(planId);
  }

  currentPlan(): Plan | undefined {
    return this.currentPlanId ? this.plans.get(this.currentPlanId) : undefined;
  }

  /** Every step with its plan and fork, for quick picks. */
  allSteps(): { plan: Plan; fork: Fork; step: Step }[] {
    const out: { plan: Plan; fork: Fork; step: Step }[] = [];
    for (const plan of this.plans.values()) {
      for (const fork of plan.forks) {
        for (const step of fork.steps) {
          out.push({ plan, fork, step });
        }
      }
    }
    return out;
  }

  findStep(stepId: string, planId?: string): { plan: Plan; fork: Fork; step: Step } | undefined {
    return this.allSteps().find((e) => e.step.step_id === stepId && (planId === undefined || e.plan.plan_id === planId));
  }
}

/** A plan's state as its steps show it, once notifications have changed them. */
export function derivePlanState(plan: Plan): string {
  const p = planProgress(plan);
  if (p.total === 0) {
    return plan.state;
  }
  if (p.waiting > 0) {
    return 'waiting_approval';
  }
  if (p.inProgress > 0 || p.pending > 0) {
    return 'in_progress';
  }
  if (p.failed > 0 && p.completed === 0) {
    return 'failed';
  }
  return 'completed';
}

export function planProgress(plan: Plan | undefined): Progress {
  const out: Progress = { total: 0, completed: 0, failed: 0, waiting: 0, inProgress: 0, pending: 0 };
  if (!plan) {
    return out;
  }
  for (const fork of plan.forks) {
    for (const step of fork.steps) {
      out.total += 1;
      switch (step.state) {
        case 'completed':
          out.completed += 1;
          break;
        case 'failed':
          out.failed += 1;
          break;
        case 'waiting_approval':
          out.waiting += 1;
          break;
        case 'in_progress':
          out.inProgress += 1;
          break;
        default:
          out.pending += 1;
      }
    }
  }
  return out;
}

/**
 * The step-state vocabulary for a plan's icon: the server's plan states (`running`,
 * `finished`, `halted`, …) mapped onto pending / in_progress / waiting_approval / completed /
 * failed, with live step states taking precedence.
 */
export function planDisplayState(plan: Plan): string {
  const p = planProgress(plan);
  if (p.waiting > 0) return 'waiting_approval';
  if (p.inProgress > 0) return 'in_progress';
  switch (plan.state) {
    case 'finished':
    case 'completed':
    case 'merged':
      return p.failed > 0 && p.completed === 0 ? 'failed' : 'completed';
    case 'failed':
    case 'halted':
    case 'cancelled':
      return 'failed';
    case 'running':
    case 'in_progress':
    case 'planning':
      return 'in_progress';
    case 'waiting_approval':
      return 'waiting_approval';
    default:
      return p.total > 0 && p.completed === p.total ? 'completed' : 'pending';
  }
}
