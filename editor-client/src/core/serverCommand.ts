/**
 * Where the Conductor language server comes from, the way Python tool extensions (ruff,
 * Microsoft's black / pylint / mypy) find their tool. Pure: the machine (files, interpreters,
 * PATH) is reached only through the probes passed in, so every rule is unit-tested.
 *
 * Order:
 *   1. the `conductor.serverCommand` setting (array `["cmd", "arg", …]` or a string);
 *   2. the workspace's own virtual environment: `.venv/` or `venv/` in a workspace folder
 *      (its `conductor` script, else its python with conductor importable);
 *   3. the interpreter selected in the Python extension, when conductor is importable there:
 *      `<python> -m conductor lsp`;
 *   4. `conductor` on PATH — the editor's PATH and the login shell's (VS Code and code-server
 *      start extensions with the login shell's PATH, not the terminal's);
 *   5. where pipx and `uv tool` install commands (`$PIPX_BIN_DIR`, `$UV_TOOL_BIN_DIR`,
 *      `~/.local/bin`, and their tool environments);
 *   6. `python3` / `python` on PATH when conductor is importable there.
 */

export type Source = 'setting' | 'workspace-venv' | 'python-extension' | 'path' | 'pipx-or-uv' | 'python-on-path';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where it came from, for the log and for messages. */
  source: Source;
}

export interface DiscoveryInput {
  /** Value of `conductor.serverCommand` (string, array, or unset). */
  setting: unknown;
  /** Workspace folder paths, in order. */
  workspaceFolders: string[];
  /** Interpreter path the Python extension reports, if that extension is installed. */
  pythonExtensionInterpreter?: string;
  /** PATH directories: the editor's own, then the login shell's. */
  pathDirs: string[];
  home: string;
  env: Record<string, string | undefined>;
  platform: string;
}

export interface Probes {
  /** True when `path` is an executable regular file. */
  isExecutable(path: string): boolean;
  /** True when `python` can import conductor (conductor-runtime installed there). */
  hasConductor(python: string): Promise<boolean>;
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

function join(platform: string, ...parts: string[]): string {
  const sep = platform === 'win32' ? '\\' : '/';
  return parts.map((p, i) => (i === 0 ? p.replace(/[\\/]+$/, '') : p.replace(/^[\\/]+|[\\/]+$/g, ''))).filter(Boolean).join(sep);
}

function exe(platform: string, name: string): string {
  return platform === 'win32' ? `${name}.exe` : name;
}

/** `bin/` (or `Scripts\` on Windows) of a virtual environment. */
export function venvBin(venv: string, platform: string): string {
  return join(platform, venv, platform === 'win32' ? 'Scripts' : 'bin');
}

/** The virtual environments of the workspace folders, in order (`.venv` before `venv`). */
export function workspaceVenvs(input: Pick<DiscoveryInput, 'workspaceFolders' | 'platform'>): string[] {
  return input.workspaceFolders.flatMap((f) => ['.venv', 'venv'].map((v) => join(input.platform, f, v)));
}

/** Where pipx and `uv tool` put the `conductor` command. */
export function toolLocations(input: Pick<DiscoveryInput, 'home' | 'env' | 'platform'>): string[] {
  const { home, env, platform } = input;
  const name = exe(platform, 'conductor');
  const data = env.XDG_DATA_HOME || join(platform, home, '.local', 'share');
  const dirs = [
    env.PIPX_BIN_DIR,
    env.UV_TOOL_BIN_DIR,
    join(platform, home, '.local', 'bin'),
    venvBin(join(platform, env.PIPX_HOME || join(platform, home, '.local', 'pipx'), 'venvs', 'conductor-runtime'), platform),
    venvBin(join(platform, env.UV_TOOL_DIR || join(platform, data, 'uv', 'tools'), 'conductor-runtime'), platform),
  ].filter((d): d is string => typeof d === 'string' && d.length > 0);
  return [...new Set(dirs)].map((d) => join(platform, d, name));
}

export function findOnPath(name: string, dirs: string[], platform: string, isExecutable: (path: string) => boolean, pathext = '.EXE;.CMD;.BAT;.COM'): string | undefined {
  const exts = platform === 'win32' ? pathext.split(';').filter(Boolean) : [''];
  for (const dir of dirs) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(platform, dir, name + ext);
      if (isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Splits a PATH value into directories (`;` on Windows). */
export function pathDirs(value: string | undefined, platform: string): string[] {
  return (value ?? '').split(platform === 'win32' ? ';' : ':').filter(Boolean);
}

/** The first place that has the server, in the order above; undefined when none does. */
export async function resolveServerCommand(input: DiscoveryInput, probes: Probes): Promise<ServerCommand | undefined> {
  const fromSetting = commandFromSetting(input.setting);
  if (fromSetting) {
    return { command: fromSetting[0], args: fromSetting.slice(1), source: 'setting' };
  }
  const { platform } = input;
  for (const venv of workspaceVenvs(input)) {
    const bin = venvBin(venv, platform);
    const script = join(platform, bin, exe(platform, 'conductor'));
    if (probes.isExecutable(script)) {
      return { command: script, args: ['lsp'], source: 'workspace-venv' };
    }
    const python = join(platform, bin, exe(platform, 'python'));
    if (probes.isExecutable(python) && (await probes.hasConductor(python))) {
      return { command: python, args: ['-m', 'conductor', 'lsp'], source: 'workspace-venv' };
    }
  }
  const py = input.pythonExtensionInterpreter;
  if (py && (await probes.hasConductor(py))) {
    return { command: py, args: ['-m', 'conductor', 'lsp'], source: 'python-extension' };
  }
  const onPath = findOnPath('conductor', input.pathDirs, platform, probes.isExecutable, input.env.PATHEXT);
  if (onPath) {
    return { command: onPath, args: ['lsp'], source: 'path' };
  }
  for (const tool of toolLocations(input)) {
    if (probes.isExecutable(tool)) {
      return { command: tool, args: ['lsp'], source: 'pipx-or-uv' };
    }
  }
  for (const name of ['python3', 'python']) {
    const p = findOnPath(name, input.pathDirs, platform, probes.isExecutable, input.env.PATHEXT);
    if (p && (await probes.hasConductor(p))) {
      return { command: p, args: ['-m', 'conductor', 'lsp'], source: 'python-on-path' };
    }
  }
  return undefined;
}

/** The interpreter "Install Conductor into …" installs into: the workspace venv, the selected one, python3. */
export function installTarget(input: DiscoveryInput, isExecutable: (path: string) => boolean): string | undefined {
  for (const venv of workspaceVenvs(input)) {
    const python = join(input.platform, venvBin(venv, input.platform), exe(input.platform, 'python'));
    if (isExecutable(python)) return python;
  }
  if (input.pythonExtensionInterpreter) return input.pythonExtensionInterpreter;
  return findOnPath('python3', input.pathDirs, input.platform, isExecutable, input.env.PATHEXT) ?? findOnPath('python', input.pathDirs, input.platform, isExecutable, input.env.PATHEXT);
}

/** The command that runs another Conductor subcommand (`agent`, `mcp`) the same way as the server. */
export function sibling(server: ServerCommand, subcommand: string[]): string[] {
  if (server.args[0] === '-m' && server.args[1] === 'conductor') {
    return [server.command, '-m', 'conductor', ...subcommand];
  }
  const lsp = server.args.indexOf('lsp');
  return [server.command, ...(lsp >= 0 ? server.args.slice(0, lsp) : []), ...subcommand];
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

/** Quotes one argument for a POSIX shell (for the terminal commands the user sees). */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
