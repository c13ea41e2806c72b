import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandFromSetting, findOnPath, pythonCandidates, resolveServerCommand, serverEnvironment, splitCommandLine } from '../src/core/serverCommand';

const none = (): undefined => undefined;
const which = (table: Record<string, string>) => (name: string): string | undefined => table[name];

describe('serverCommand discovery', () => {
  it('prefers the setting (array)', () => {
    const r = resolveServerCommand({ setting: ['/opt/py/bin/python', '-m', 'conductor', 'lsp'], pythonExtensionInterpreter: '/venv/bin/python', interpretersWithConductor: new Set(['/venv/bin/python']), which: which({ conductor: '/usr/bin/conductor' }) });
    assert.deepEqual(r, { command: '/opt/py/bin/python', args: ['-m', 'conductor', 'lsp'], source: 'setting' });
  });

  it('accepts the setting as a string with quotes', () => {
    const r = resolveServerCommand({ setting: '"/my tools/conductor" lsp --log-level debug', interpretersWithConductor: new Set(), which: none });
    assert.deepEqual(r, { command: '/my tools/conductor', args: ['lsp', '--log-level', 'debug'], source: 'setting' });
  });

  it('ignores empty settings', () => {
    assert.equal(commandFromSetting(''), undefined);
    assert.equal(commandFromSetting('   '), undefined);
    assert.equal(commandFromSetting([]), undefined);
    assert.equal(commandFromSetting(null), undefined);
    assert.equal(commandFromSetting([42]), undefined);
  });

  it('uses the Python extension interpreter when conductor is installed there', () => {
    const r = resolveServerCommand({ setting: null, pythonExtensionInterpreter: '/venv/bin/python', interpretersWithConductor: new Set(['/venv/bin/python']), which: which({ conductor: '/usr/bin/conductor' }) });
    assert.deepEqual(r, { command: '/venv/bin/python', args: ['-m', 'conductor', 'lsp'], source: 'python-extension' });
  });

  it('falls back to conductor on PATH when the selected interpreter lacks conductor', () => {
    const r = resolveServerCommand({ setting: undefined, pythonExtensionInterpreter: '/venv/bin/python', interpretersWithConductor: new Set(), which: which({ conductor: '/home/u/.local/bin/conductor' }) });
    assert.deepEqual(r, { command: '/home/u/.local/bin/conductor', args: ['lsp'], source: 'path' });
  });

  it('falls back to python3 -m conductor when only the module is importable', () => {
    const r = resolveServerCommand({ setting: undefined, interpretersWithConductor: new Set(['/usr/bin/python3']), which: which({ python3: '/usr/bin/python3' }) });
    assert.deepEqual(r, { command: '/usr/bin/python3', args: ['-m', 'conductor', 'lsp'], source: 'python-on-path' });
  });

  it('returns undefined when nothing is found', () => {
    assert.equal(resolveServerCommand({ setting: undefined, interpretersWithConductor: new Set(), which: which({ python3: '/usr/bin/python3' }) }), undefined);
  });

  it('lists python candidates without duplicates', () => {
    assert.deepEqual(pythonCandidates({ setting: undefined, pythonExtensionInterpreter: '/usr/bin/python3', which: which({ python3: '/usr/bin/python3', python: '/usr/bin/python' }) }), ['/usr/bin/python3', '/usr/bin/python']);
  });

  it('splits command lines', () => {
    assert.deepEqual(splitCommandLine(`a 'b c' "d \\"e\\"" f\\ g  `), ['a', 'b c', 'd "e"', 'f g']);
    assert.deepEqual(splitCommandLine(`x ''`), ['x', '']);
  });

  it('finds programs on PATH', () => {
    const exe = new Set(['/b/conductor', '/c/conductor']);
    assert.equal(findOnPath('conductor', { PATH: '/a::/b:/c' }, 'linux', (p) => exe.has(p)), '/b/conductor');
    assert.equal(findOnPath('conductor', { PATH: '/a' }, 'linux', (p) => exe.has(p)), undefined);
    assert.equal(findOnPath('conductor', {}, 'linux', () => true), undefined);
    const win = new Set(['C:\\py\\Scripts\\conductor.EXE']);
    assert.equal(findOnPath('conductor', { Path: 'C:\\x;C:\\py\\Scripts', PATHEXT: '.COM;.EXE' }, 'win32', (p) => win.has(p)), 'C:\\py\\Scripts\\conductor.EXE');
  });

  it('passes the API key in the environment only', () => {
    const env = serverEnvironment({ PATH: '/bin', UNSET: undefined }, 'sk-1', 'gemini-2.5-flash');
    assert.equal(env.CONDUCTOR_API_KEY, 'sk-1');
    assert.equal(env.GEMINI_API_KEY, 'sk-1');
    assert.equal(env.PATH, '/bin');
    assert.equal('UNSET' in env, false);
    const env2 = serverEnvironment({ GEMINI_API_KEY: 'mine' }, 'sk-2', 'gemini-x');
    assert.equal(env2.GEMINI_API_KEY, 'mine');
    const env3 = serverEnvironment({}, 'sk-3', 'gpt-4o');
    assert.equal(env3.GEMINI_API_KEY, undefined);
    const env4 = serverEnvironment({}, undefined, 'gemini');
    assert.equal(env4.CONDUCTOR_API_KEY, undefined);
  });
});
