/** Turns command results (JSON) into what the user sees. Pure. */
import { Plan, planProgress } from './planModel';

const STATE_MARK: Record<string, string> = {
  pending: '○',
  in_progress: '◐',
  waiting_approval: '?',
  completed: '✓',
  failed: '✗',
};

function fence(value: unknown): string {
  return '```json\n' + JSON.stringify(value, null, 2) + '\n```';
}

/** If a result carries ready-made text (`markdown`, `text`, `explanation`), use it. */
function readyText(result: unknown): string | undefined {
  if (typeof result === 'string') {
    return result;
  }
  if (result && typeof result === 'object' && !Array.isArray(result)) {
    const r = result as Record<string, unknown>;
    for (const k of ['markdown', 'text', 'explanation']) {
      if (typeof r[k] === 'string' && (r[k] as string).trim()) {
        return r[k] as string;
      }
    }
  }
  return undefined;
}

export function statusMarkdown(plans: Plan[]): string {
  const lines = ['# Conductor status', ''];
  if (plans.length === 0) {
    lines.push('No plans yet. Run **Conductor: Build…** or **Conductor: Explore…** from the command palette.');
    return lines.join('\n') + '\n';
  }
  for (const plan of plans) {
    const p = planProgress(plan);
    lines.push(`## ${plan.goal}`, '', `plan \`${plan.plan_id}\` — ${plan.state} — ${p.completed}/${p.total} completed` + (p.failed ? `, ${p.failed} failed` : ''), '');
    for (const fork of plan.forks) {
      lines.push(`### fork \`${fork.fork_id}\``, '');
      for (const s of fork.steps) {
        const conf = s.confidence ? ` — confidence ${s.confidence.score.toFixed(2)} (${s.confidence.level})` : '';
        const reason = s.reason ? ` — ${s.reason}` : '';
        lines.push(`- ${STATE_MARK[s.state] ?? '·'} \`${s.step_id}\` ${s.title} — *${s.state}*${conf}${reason}`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}

/** Generic Markdown for a command result: ready text when present, otherwise fenced JSON. */
export function resultMarkdown(title: string, result: unknown): string {
  const text = readyText(result);
  if (text !== undefined) {
    return text.startsWith('#') ? text : `# ${title}\n\n${text}\n`;
  }
  if (result === null || result === undefined) {
    return `# ${title}\n\n(no result)\n`;
  }
  return `# ${title}\n\n${fence(result)}\n`;
}

export interface ValidationSummary {
  files: number | undefined;
  errors: number;
  warnings: number;
  infos: number;
  message: string;
}

function severityOf(v: unknown): 'error' | 'warning' | 'info' | undefined {
  if (typeof v === 'number') {
    return v === 1 ? 'error' : v === 2 ? 'warning' : 'info';
  }
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    return s.startsWith('err') ? 'error' : s.startsWith('warn') ? 'warning' : 'info';
  }
  return undefined;
}

/**
 * Summarises a `conductor.validate` result, whatever its exact nesting: every object with a
 * `message` and a `severity` counts as one diagnostic; a `files` count/list gives the file count.
 */
export function summarizeValidation(result: unknown): ValidationSummary {
  let errors = 0;
  let warnings = 0;
  let infos = 0;
  let files: number | undefined;
  const seen = new Set<unknown>();
  const walk = (v: unknown, depth: number): void => {
    if (!v || typeof v !== 'object' || depth > 8 || seen.has(v)) {
      return;
    }
    seen.add(v);
    if (Array.isArray(v)) {
      v.forEach((x) => walk(x, depth + 1));
      return;
    }
    const o = v as Record<string, unknown>;
    if (typeof o.message === 'string' && o.severity !== undefined) {
      const sev = severityOf(o.severity);
      if (sev === 'error') errors++;
      else if (sev === 'warning') warnings++;
      else infos++;
      return;
    }
    if (files === undefined) {
      for (const k of ['files', 'checked', 'files_checked', 'documents']) {
        if (typeof o[k] === 'number') {
          files = o[k] as number;
          break;
        }
        if (Array.isArray(o[k])) {
          files = (o[k] as unknown[]).length;
          break;
        }
        if (o[k] && typeof o[k] === 'object') {
          files = Object.keys(o[k] as object).length;
          break;
        }
      }
    }
    for (const x of Object.values(o)) {
      walk(x, depth + 1);
    }
  };
  walk(result, 0);
  const where = files !== undefined ? ` in ${files} file${files === 1 ? '' : 's'}` : '';
  const parts: string[] = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? '' : 's'}`);
  if (infos) parts.push(`${infos} info`);
  const message = parts.length === 0 ? `Conductor: no problems found${where}.` : `Conductor: ${parts.join(', ')}${where}.`;
  return { files, errors, warnings, infos, message };
}

export const STATE_LABELS: Record<string, string> = {
  pending: 'pending',
  in_progress: 'in progress',
  waiting_approval: 'waiting for approval',
  completed: 'completed',
  failed: 'failed',
};

/** Description text of a step in the tree: "0.82 high" (confidence) plus state when noteworthy. */
export function stepDescription(state: string, confidence: { score: number; level: string } | null): string {
  const conf = confidence ? `${confidence.score.toFixed(2)} ${confidence.level}` : '';
  const st = state === 'waiting_approval' ? 'needs approval' : state === 'failed' ? 'failed' : '';
  return [conf, st].filter(Boolean).join(' · ');
}
