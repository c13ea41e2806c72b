/**
 * The server's `conductor/plans` answer and how it reads to a person. Pure.
 *
 * Every state here comes from the server (the journal projection plus the handoff files);
 * this module only words it: a step's label, how long something has waited, the status bar
 * text for a plan's `display_state`.
 */

export interface StepPaths {
  task: string | null;
  result: string | null;
  provenance: string | null;
}

export interface ViewStep {
  step_id: string;
  title: string;
  kind: 'plan' | 'step';
  strategy?: string;
  state: string;
  waiting_for: 'agent' | 'approval' | null;
  since: string | null;
  confidence: { score: number; level: string } | null;
  reason: string | null;
  paths: StepPaths;
}

export interface ViewFork {
  fork_id: string;
  strategy: string;
  steps: ViewStep[];
}

export interface Waiting {
  waiting_for: 'agent' | 'approval';
  fork_id: string;
  step_id: string;
  title: string | null;
  since: string | null;
  task: string | null;
}

export interface ViewPlan {
  plan_id: string;
  goal: string;
  mode: string | null;
  state: string;
  outcome: string | null;
  halted_reason: string | null;
  display_state: string;
  waiting: Waiting | null;
  forks: ViewFork[];
}

export interface Readiness {
  root: string;
  mode: string;
  api_key_env: string;
  api_key_set: boolean;
}

export interface PlansView {
  plans: ViewPlan[];
  projects: Readiness[];
}

const asString = (v: unknown, d = ''): string => (typeof v === 'string' ? v : v === null || v === undefined ? d : String(v));
const asObject = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const orNull = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** Reads a `conductor/plans` answer defensively (an older server may omit fields). */
export function readPlansView(raw: unknown): PlansView {
  const r = asObject(raw);
  const plans = asArray(r.plans).map((p): ViewPlan => {
    const o = asObject(p);
    const w = asObject(o.waiting);
    return {
      plan_id: asString(o.plan_id),
      goal: asString(o.goal, asString(o.plan_id)),
      mode: orNull(o.mode),
      state: asString(o.state, 'pending'),
      outcome: orNull(o.outcome),
      halted_reason: orNull(o.halted_reason),
      display_state: asString(o.display_state, asString(o.state, 'pending')),
      waiting: w.step_id ? { waiting_for: w.waiting_for === 'approval' ? 'approval' : 'agent', fork_id: asString(w.fork_id), step_id: asString(w.step_id), title: orNull(w.title), since: orNull(w.since), task: orNull(w.task) } : null,
      forks: asArray(o.forks).map((f) => {
        const fo = asObject(f);
        return {
          fork_id: asString(fo.fork_id, 'main'),
          strategy: asString(fo.strategy),
          steps: asArray(fo.steps).map((s) => readStep(s)).filter((s): s is ViewStep => s !== undefined),
        };
      }),
    };
  });
  const projects = asArray(r.projects).map((p) => {
    const o = asObject(p);
    return { root: asString(o.root), mode: asString(o.mode, 'handoff'), api_key_env: asString(o.api_key_env, 'GEMINI_API_KEY'), api_key_set: o.api_key_set === true };
  });
  return { plans: plans.filter((p) => p.plan_id), projects };
}

function readStep(raw: unknown): ViewStep | undefined {
  const o = asObject(raw);
  const id = asString(o.step_id);
  if (!id) return undefined;
  const c = asObject(o.confidence);
  const paths = asObject(o.paths);
  return {
    step_id: id,
    title: asString(o.title, id) || id,
    kind: o.kind === 'plan' ? 'plan' : 'step',
    strategy: typeof o.strategy === 'string' ? o.strategy : undefined,
    state: asString(o.state, 'pending'),
    waiting_for: o.waiting_for === 'agent' || o.waiting_for === 'approval' ? o.waiting_for : null,
    since: orNull(o.since),
    confidence: typeof c.score === 'number' ? { score: c.score, level: asString(c.level) } : null,
    reason: orNull(o.reason),
    paths: { task: orNull(paths.task), result: orNull(paths.result), provenance: orNull(paths.provenance) },
  };
}

/** "45 s", "1 m 20 s", "2 h 5 m". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} m`;
}

/** How long since an ISO time, or '' when unknown. */
export function waitedFor(since: string | null, now: number): string {
  if (!since) return '';
  const t = Date.parse(since);
  return Number.isFinite(t) ? formatDuration(now - t) : '';
}

export const STATE_LABELS: Record<string, string> = {
  pending: 'pending',
  in_progress: 'running',
  waiting_approval: 'waiting for approval',
  completed: 'done',
  failed: 'failed',
  skipped: 'skipped',
  halted: 'halted',
};

/** A step's state in words: "waiting for an agent", "running", "done" … */
export function stepStateLabel(step: ViewStep): string {
  if (step.waiting_for === 'agent') return 'waiting for an agent';
  if (step.waiting_for === 'approval') return 'waiting for approval';
  return STATE_LABELS[step.state] ?? step.state;
}

/** The tree's icon key for a step. */
export function stepIconKey(step: ViewStep): string {
  if (step.waiting_for === 'agent') return 'waiting_agent';
  if (step.waiting_for === 'approval') return 'waiting_approval';
  return step.state;
}

/** "waiting for an agent to claim step_000 (1 m 20 s)" — the progress line while a plan waits. */
export function waitingMessage(waiting: Waiting, now: number): string {
  const took = waitedFor(waiting.since, now);
  const what = waiting.waiting_for === 'agent' ? `waiting for an agent to claim ${waiting.step_id}` : `waiting for your approval of ${waiting.step_id}`;
  return took ? `${what} (${took})` : what;
}

export interface StatusBarContent {
  text: string;
  tooltip: string;
}

function counts(plan: ViewPlan): { done: number; total: number } {
  const steps = plan.forks.flatMap((f) => f.steps).filter((s) => s.kind !== 'plan');
  return { done: steps.filter((s) => s.state === 'completed' || s.state === 'skipped').length, total: steps.length };
}

/** The status bar for the current plan: running / waiting for agent / waiting for approval / failed / done. */
export function statusBarContent(plan: ViewPlan | undefined, server: 'running' | 'starting' | 'stopped' | 'missing', now: number): StatusBarContent {
  if (server === 'missing') {
    return { text: '$(warning) Conductor: not installed', tooltip: 'Conductor: no language server found. Click for the ways to install or point to it.' };
  }
  if (!plan) {
    return { text: '$(circle-large-outline) Conductor', tooltip: server === 'running' ? 'Conductor: no plans yet' : `Conductor: server ${server}` };
  }
  const { done, total } = counts(plan);
  const progress = total > 0 ? ` ${done}/${total}` : '';
  const w = plan.waiting;
  const tip = [`Conductor — ${plan.goal}`, `plan ${plan.plan_id}: ${plan.display_state.replace(/_/g, ' ')}${progress ? `, ${done} of ${total} steps done` : ''}`];
  let text: string;
  switch (plan.display_state) {
    case 'waiting_for_agent':
      text = `$(person) Conductor: waiting for agent${w ? ` (${w.step_id}${w.since ? `, ${waitedFor(w.since, now)}` : ''})` : ''}`;
      if (w) tip.push(`${w.title ?? w.step_id} waits for an agent to claim ${w.task ?? 'its task'}`);
      break;
    case 'waiting_for_approval':
      text = `$(bell-dot) Conductor: waiting for approval${w ? ` (${w.step_id})` : ''}`;
      break;
    case 'failed':
      text = `$(error) Conductor: failed${progress}`;
      break;
    case 'done':
      text = `$(pass-filled) Conductor: done${progress}`;
      break;
    case 'halted':
      text = `$(debug-pause) Conductor: halted${progress}`;
      if (plan.halted_reason) tip.push(plan.halted_reason);
      break;
    default:
      text = `$(sync~spin) Conductor: running${progress}`;
  }
  return { text, tooltip: tip.join('\n') };
}

/** The plans as Markdown (the rendered Status view). */
export function statusMarkdown(view: PlansView, now: number): string {
  const lines = ['# Conductor status', ''];
  if (view.plans.length === 0) {
    lines.push('No plans yet. Run **Conductor: Build…** or **Conductor: Explore…** from the command palette.', '');
    return lines.join('\n');
  }
  for (const plan of [...view.plans].reverse()) {
    const { done, total } = counts(plan);
    lines.push(`## ${escapeMd(plan.goal)}`, '');
    lines.push(`Plan \`${plan.plan_id}\` · **${plan.display_state.replace(/_/g, ' ')}** · ${done} of ${total} steps done`, '');
    if (plan.waiting) lines.push(`> ${waitingMessage(plan.waiting, now)}`, '');
    if (plan.halted_reason && plan.display_state === 'halted') lines.push(`> halted: ${escapeMd(plan.halted_reason)}`, '');
    for (const fork of plan.forks) {
      lines.push(`### Fork \`${fork.fork_id}\`${fork.strategy ? ` (${escapeMd(fork.strategy)})` : ''}`, '');
      lines.push('| step | title | state | confidence |', '|---|---|---|---|');
      for (const s of fork.steps) {
        const conf = s.confidence ? `${s.confidence.score.toFixed(2)} ${s.confidence.level}` : '';
        const waited = s.waiting_for ? ` (${waitedFor(s.since, now)})` : '';
        lines.push(`| \`${s.step_id}\` | ${escapeMd(s.title)} | ${stepStateLabel(s)}${waited} | ${conf} |`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}

export function escapeMd(text: string): string {
  return text.replace(/([\\`*_[\]|<>])/g, '\\$1');
}

/**
 * The effective policy (`conductor.policy` with origins) as Markdown: each value with its
 * origin as a link to file:line (`link` builds the target).
 */
export function policyMarkdown(result: unknown, link: (file: string, line: number | null) => string): string {
  const r = asObject(result);
  if (r.ok === false) {
    return `# Effective policy\n\nThe policy cannot be used: ${escapeMd(asString(r.error))}\n`;
  }
  const policy = asObject(r.policy ?? result);
  const out = ['# Effective policy', '', 'Each value with the level and place it comes from.', ''];
  const origin = (o: unknown): string => {
    const oo = asObject(o);
    const file = orNull(oo.file);
    const line = typeof oo.line === 'number' ? oo.line : null;
    const level = asString(oo.level, 'default');
    if (!file) return `*${level}*`;
    return `*${level}* · [${escapeMd(file)}${line ? `:${line}` : ''}](${link(file, line)})`;
  };
  const value = (v: unknown): string => (typeof v === 'object' ? `\`${JSON.stringify(v)}\`` : `\`${String(v)}\``);
  const leaf = (v: unknown): v is { value: unknown; origin: unknown } => !!v && typeof v === 'object' && 'value' in (v as object) && 'origin' in (v as object);
  const section = (title: string, node: unknown, depth: number): void => {
    if (leaf(node)) {
      out.push(`- **${escapeMd(title)}**: ${value(node.value)} — ${origin(node.origin)}`);
      return;
    }
    if (Array.isArray(node)) {
      out.push('', `${'#'.repeat(Math.min(depth, 4))} ${escapeMd(title)}`, '');
      if (node.length === 0) out.push('_none_');
      for (const item of node) {
        if (leaf(item)) out.push(`- ${value(item.value)} — ${origin(item.origin)}`);
        else out.push(`- ${value(item)}`);
      }
      out.push('');
      return;
    }
    if (node && typeof node === 'object') {
      out.push('', `${'#'.repeat(Math.min(depth, 4))} ${escapeMd(title)}`, '');
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) section(k, v, depth + 1);
      out.push('');
      return;
    }
    out.push(`- **${escapeMd(title)}**: ${value(node)}`);
  };
  for (const [k, v] of Object.entries(policy)) section(k, v, 2);
  return out.join('\n').replace(/\n{3,}/g, '\n\n') + '\n';
}
