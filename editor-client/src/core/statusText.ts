/** Status bar text for the current plan, e.g. "Conductor 3/5 ✓ 1 ⚠". Pure. */
import { Plan, planProgress } from './planModel';

export interface StatusBarContent {
  text: string;
  tooltip: string;
}

export function statusBarContent(plan: Plan | undefined, serverState: 'running' | 'starting' | 'stopped' | 'missing' = 'running'): StatusBarContent {
  if (serverState === 'missing') {
    return { text: 'Conductor ⚠', tooltip: 'Conductor: language server not found. Click to open the Conductor view.' };
  }
  if (!plan) {
    const suffix = serverState === 'running' ? 'no plans yet' : `server ${serverState}`;
    return { text: 'Conductor', tooltip: `Conductor: ${suffix}` };
  }
  const p = planProgress(plan);
  let text = `Conductor ${p.completed}/${p.total} ✓`;
  if (p.failed > 0) {
    text += ` ${p.failed} ⚠`;
  }
  if (p.waiting > 0) {
    text += ` ${p.waiting} ?`;
  }
  const lines = [
    `Conductor — ${plan.goal}`,
    `plan ${plan.plan_id} (${plan.state})`,
    `${p.completed} of ${p.total} steps completed` +
      (p.failed ? `, ${p.failed} failed` : '') +
      (p.waiting ? `, ${p.waiting} waiting for approval` : '') +
      (p.inProgress ? `, ${p.inProgress} in progress` : ''),
  ];
  return { text, tooltip: lines.join('\n') };
}
