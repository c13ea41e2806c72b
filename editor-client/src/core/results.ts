/** Turns command results (JSON) into what the user sees. Pure. */

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

/**
 * The one line a toast shows of a server error: its first non-empty line, whole (a toast
 * that cuts "PolicyError…" tells the user nothing); the rest goes to the output channel.
 */
export function firstLine(message: string): { first: string; rest: string } {
  const lines = message.split(/\r?\n/);
  const i = lines.findIndex((l) => l.trim().length > 0);
  if (i < 0) return { first: '', rest: '' };
  return { first: lines[i].trim(), rest: lines.slice(i + 1).join('\n').trim() };
}

/** Whether a server error is about the policy (then "Open policy" is the useful action). */
export function mentionsPolicy(message: string): boolean {
  return /policy\.ya?ml|PolicyError|\bpolicy\b/i.test(message);
}
