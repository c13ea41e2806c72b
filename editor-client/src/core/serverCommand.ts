/**
 * Where the Conductor language server comes from. Pure: everything it needs to know about
 * the machine (settings, the Python extension's interpreter, PATH look-ups) is passed in.
 *
 * Order:
 *   1. the `conductor.serverCommand` setting (array `["cmd", "arg", …]` or a string),
 *   2. the Python extension's selected interpreter, when conductor is importable there:
 *      `<python> -m conductor lsp`,
 *   3. `conductor` on PATH: `conductor lsp`,
 *   4. `python3`/`python` on PATH when conductor is importable there: `<python> -m conductor lsp`.
 */

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where it came from, for the log and for messages. */
  source: 'setting' | 'python-extension' | 'path' | 'python-on-path';
}

export interface DiscoveryInput {
  /** Value of `conductor.serverCommand` (string, array, or unset). */
  setting: unknown;
  /** Interpreter path the Python extension reports, if that extension is installed. */
  pythonExtensionInterpreter?: string;
  /** Python interpreters known to have `conductor` importable (checked by the caller). */
  interpretersWithConductor: ReadonlySet<string>;
  /** Result of looking up a program name on PATH (absolute path or undefined). */
  which: (name: string) => string | undefined;
}

/** Splits a command line the way a POSIX shell would for simple cases (quotes, backslashes). */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) {
        quote = undefined;
      } else if (c === '\\' && quote === '"' && i + 1 < line.length && (line[i + 1] === '"' || line[i + 1] === '\\')) {
        cur += line[++i];
      } else {
        cur += c;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) {
        out.push(cur);
        cur = '';
        has = false;
      }
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) {
    out.push(cur);
  }
  return out;
}

/** The `conductor.serverCommand` setting as an argv, or undefined when unset/empty/invalid. */
export function commandFromSetting(setting: unknown): string[] | undefined {
  if (typeof setting === 'string') {
    const argv = splitCommandLine(setting.trim());
    return argv.length > 0 ? argv : undefined;
  }
  if (Array.isArray(setting)) {
    const argv = setting.filter((x): x is string => typeof x === 'string');
    return argv.length > 0 && argv[0].trim().length > 0 ? argv : undefined;
  }
  return undefined;
}

export function resolveServerCommand(input: DiscoveryInput): ServerCommand | undefined {
  const fromSetting = commandFromSetting(input.setting);
  if (fromSetting) {
    return { command: fromSetting[0], args: fromSetting.slice(1), source: 'setting' };
  }
  const py = input.pythonExtensionInterpreter;
  if (py && input.interpretersWithConductor.has(py)) {
    return { command: py, args: ['-m', 'conductor', 'lsp'], source: 'python-extension' };
  }
  const onPath = input.which('conductor');
  if (onPath) {
    return { command: onPath, args: ['lsp'], source: 'path' };
  }
  for (const name of ['python3', 'python']) {
    const p = input.which(name);
    if (p && input.interpretersWithConductor.has(p)) {
      return { command: p, args: ['-m', 'conductor', 'lsp'], source: 'python-on-path' };
    }
  }
  return undefined;
}

/** Python interpreters worth checking for an importable `conductor` (in discovery order). */
export function pythonCandidates(input: Omit<DiscoveryInput, 'interpretersWithConductor'>): string[] {
  const out: string[] = [];
  if (input.pythonExtensionInterpreter) {
    out.push(input.pythonExtensionInterpreter);
  }
  for (const name of ['python3', 'python']) {
    const p = input.which(name);
    if (p && !out.includes(p)) {
      out.push(p);
    }
  }
  return out;
}

/**
 * Looks a program up on PATH. `isExecutable` is injected (fs access in the extension, a set in
 * tests). On Windows, PATHEXT extensions are tried too.
 */
export function findOnPath(
  name: string,
  env: Record<string, string | undefined>,
  platform: string,
  isExecutable: (path: string) => boolean,
): string | undefined {
  const win = platform === 'win32';
  const sep = win ? ';' : ':';
  const pathVar = env.PATH ?? env.Path ?? '';
  const exts = win ? (env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean) : [''];
  const join = (dir: string, file: string): string => (dir.endsWith('/') || dir.endsWith('\\') ? dir + file : `${dir}${win ? '\\' : '/'}${file}`);
  for (const dir of pathVar.split(sep)) {
    if (!dir) {
      continue;
    }
    for (const ext of exts) {
      const candidate = join(dir, name + ext);
      if (isExecutable(candidate)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** Environment for the server process: the API key is passed, never written to settings. */
export function serverEnvironment(
  base: Record<string, string | undefined>,
  apiKey: string | undefined,
  model: string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) {
    if (v !== undefined) {
      env[k] = v;
    }
  }
  if (apiKey) {
    env.CONDUCTOR_API_KEY = apiKey;
    if (model && /gemini/i.test(model) && !env.GEMINI_API_KEY) {
      env.GEMINI_API_KEY = apiKey;
    }
  }
  return env;
}
