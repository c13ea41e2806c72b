import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DiscoveryInput,
  commandFromSetting,
  findOnPath,
  installTarget,
  pathDirs,
  resolveServerCommand,
  serverEnvironment,
  shellQuote,
  sibling,
  splitCommandLine,
  toolLocations,
} from '../src/core/serverCommand';

function input(over: Partial<DiscoveryInput> = {}): DiscoveryInput {
  return { setting: null, workspaceFolders: ['/w'], pathDirs: ['/usr/bin', '/bin'], home: '/home/u', env: {}, platform: 'linux', ...over };
}

/** A machine: the executables that exist and the interpreters that have conductor. */
function machine(executables: string[], withConductor: string[] = []) {
  const asked: string[] = [];
  return {
    asked,
    probes: {
      isExecutable: (p: string) => executables.includes(p),
      hasConductor: async (py: string) => {
        asked.push(py);
        return withConductor.includes(py);
      },
    },
  };
}

describe('server discovery order', () => {
  it('1. the setting wins, as an array or a quoted string', async () => {
    const m = machine(['/w/.venv/bin/conductor']);
    assert.deepEqual(await resolveServerCommand(input({ setting: ['/opt/py', '-m', 'conductor', 'lsp'] }), m.probes), { command: '/opt/py', args: ['-m', 'conductor', 'lsp'], source: 'setting' });
    assert.deepEqual(await resolveServerCommand(input({ setting: '"/my tools/conductor" lsp' }), m.probes), { command: '/my tools/conductor', args: ['lsp'], source: 'setting' });
  });

  it('2. the workspace .venv: its conductor script, needing no interpreter probe', async () => {
    const m = machine(['/w/.venv/bin/conductor', '/usr/bin/conductor'], ['/sel/python']);
    assert.deepEqual(await resolveServerCommand(input({ pythonExtensionInterpreter: '/sel/python' }), m.probes), { command: '/w/.venv/bin/conductor', args: ['lsp'], source: 'workspace-venv' });
    assert.deepEqual(m.asked, []);
  });

  it('2. … or venv/ with conductor importable by its python', async () => {
    const m = machine(['/w/venv/bin/python'], ['/w/venv/bin/python']);
    assert.deepEqual(await resolveServerCommand(input(), m.probes), { command: '/w/venv/bin/python', args: ['-m', 'conductor', 'lsp'], source: 'workspace-venv' });
  });

  it('3. the Python extension interpreter when conductor is importable there', async () => {
    const m = machine(['/w/.venv/bin/python', '/usr/bin/conductor'], ['/sel/python']);
    assert.deepEqual(await resolveServerCommand(input({ pythonExtensionInterpreter: '/sel/python' }), m.probes), { command: '/sel/python', args: ['-m', 'conductor', 'lsp'], source: 'python-extension' });
  });

  it('4. conductor on PATH, the login shell PATH included', async () => {
    const m = machine(['/home/u/bin/conductor']);
    assert.deepEqual(await resolveServerCommand(input({ pathDirs: ['/usr/bin', '/home/u/bin'] }), m.probes), { command: '/home/u/bin/conductor', args: ['lsp'], source: 'path' });
  });

  it('5. pipx and uv tool locations', async () => {
    const m = machine(['/home/u/.local/share/uv/tools/conductor-runtime/bin/conductor']);
    assert.deepEqual(await resolveServerCommand(input(), m.probes), { command: '/home/u/.local/share/uv/tools/conductor-runtime/bin/conductor', args: ['lsp'], source: 'pipx-or-uv' });
    assert.ok(toolLocations({ home: '/h', env: { PIPX_BIN_DIR: '/pb' }, platform: 'linux' }).includes('/pb/conductor'));
    assert.ok(toolLocations({ home: '/h', env: {}, platform: 'linux' }).includes('/h/.local/pipx/venvs/conductor-runtime/bin/conductor'));
  });

  it('6. python3 on PATH with conductor importable', async () => {
    const m = machine(['/usr/bin/python3'], ['/usr/bin/python3']);
    assert.deepEqual(await resolveServerCommand(input(), m.probes), { command: '/usr/bin/python3', args: ['-m', 'conductor', 'lsp'], source: 'python-on-path' });
  });

  it('nothing anywhere: undefined, and the install target is the workspace venv, else the selected interpreter, else python3', async () => {
    const m = machine(['/w/.venv/bin/python', '/usr/bin/python3']);
    assert.equal(await resolveServerCommand(input({ pythonExtensionInterpreter: '/sel/python' }), m.probes), undefined);
    assert.equal(installTarget(input({ pythonExtensionInterpreter: '/sel/python' }), m.probes.isExecutable), '/w/.venv/bin/python');
    assert.equal(installTarget(input({ workspaceFolders: [], pythonExtensionInterpreter: '/sel/python' }), m.probes.isExecutable), '/sel/python');
    assert.equal(installTarget(input({ workspaceFolders: [] }), m.probes.isExecutable), '/usr/bin/python3');
  });

  it('Windows: Scripts\\ and .exe', async () => {
    const m = machine(['C:\\w\\.venv\\Scripts\\conductor.exe']);
    assert.deepEqual(await resolveServerCommand(input({ workspaceFolders: ['C:\\w'], platform: 'win32', pathDirs: [] }), m.probes), { command: 'C:\\w\\.venv\\Scripts\\conductor.exe', args: ['lsp'], source: 'workspace-venv' });
  });
});

describe('helpers', () => {
  it('ignores empty settings', () => {
    for (const v of ['', '   ', [], null, [42]]) assert.equal(commandFromSetting(v), undefined);
  });

  it('splits command lines like a shell', () => {
    assert.deepEqual(splitCommandLine(`a "b c" 'd e' f\\ g`), ['a', 'b c', 'd e', 'f g']);
  });

  it('finds programs on PATH (PATHEXT on Windows)', () => {
    assert.equal(findOnPath('conductor', ['/a', '/b'], 'linux', (p) => p === '/b/conductor'), '/b/conductor');
    assert.equal(findOnPath('conductor', ['C:\\t'], 'win32', (p) => p === 'C:\\t\\conductor.CMD', '.EXE;.CMD'), 'C:\\t\\conductor.CMD');
    assert.deepEqual(pathDirs('/a::/b', 'linux'), ['/a', '/b']);
  });

  it('runs the reference agent the way the server runs', () => {
    assert.deepEqual(sibling({ command: '/v/bin/python', args: ['-m', 'conductor', 'lsp'], source: 'workspace-venv' }, ['agent']), ['/v/bin/python', '-m', 'conductor', 'agent']);
    assert.deepEqual(sibling({ command: '/v/bin/conductor', args: ['lsp'], source: 'path' }, ['agent', '--plan', 'p']), ['/v/bin/conductor', 'agent', '--plan', 'p']);
  });

  it('passes the API key to the server environment only', () => {
    const env = serverEnvironment({ PATH: '/bin', X: undefined }, 'sk-1', 'gemini-2.5-flash');
    assert.equal(env.CONDUCTOR_API_KEY, 'sk-1');
    assert.equal(env.GEMINI_API_KEY, 'sk-1');
    assert.equal('X' in env, false);
    assert.equal(serverEnvironment({}, undefined, undefined).CONDUCTOR_API_KEY, undefined);
  });

  it('quotes for a shell', () => {
    assert.equal(shellQuote('/a/b'), '/a/b');
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
  });
});
