#!/usr/bin/env node
// End-to-end test of the Conductor extension in a real VS Code (code-server 4.100.3) driven by
// a real browser (Debian chromium through playwright-core).
//
//   node e2e/run.mjs            (after `npm run build && npm run package`)
//
// Covers the first hour of a new user (issue 16): no Conductor anywhere → the install
// notification → pip → diagnostics; Conductor only in the workspace .venv → found; a hand-off
// build waits for an agent and says so → "Start the reference agent" completes it; rendered
// status and policy; "Restart language server" leaves one process; closing the window leaves
// none. One code-server serves both workspaces.
//
// Environment:
//   CODE_SERVER_DIR   code-server cache (default ~/.cache/conductor-e2e/code-server; see
//                     scripts/install-code-server.sh)
//   CHROMIUM          browser executable (default /usr/bin/chromium)
//   CONDUCTOR_BIN     the `conductor` console script (default ../.venv/bin/conductor, else PATH)
//   E2E_ARTIFACTS     screenshots and logs (default ../tests/e2e/artifacts)
//   E2E_VSIX          the packaged extension (default ./conductor-vscode.vsix)
//   E2E_KEEP=1        keep the scratch folder
//   E2E_AGENT_COMMAND the command the reference agent runs for each task (conductor.agent.command)
//
// Prints one line per check and a final "e2e: N passed, M failed"; exit code 1 on any failure.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT = resolve(HERE, '..');
const REPO = resolve(CLIENT, '..');
const ARTIFACTS = resolve(process.env.E2E_ARTIFACTS ?? join(REPO, 'tests', 'e2e', 'artifacts'));
const CODE_SERVER_DIR = resolve(process.env.CODE_SERVER_DIR ?? join(homedir(), '.cache', 'conductor-e2e', 'code-server'));
const ENTRY = join(CODE_SERVER_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const VSIX = resolve(process.env.E2E_VSIX ?? join(CLIENT, 'conductor-vscode.vsix'));
const T0 = Date.now();
const GOAL = 'Add a greet(name) function to src/greet.py';

const results = [];
const children = [];
let scratch;

function log(msg) {
  const line = `[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)}s] ${msg}`;
  console.log(line);
  try {
    appendFileSync(join(ARTIFACTS, 'e2e-run.log'), line + '\n');
  } catch {
    /* artifacts folder not there yet */
  }
}

async function check(name, fn) {
  const t = Date.now();
  try {
    const detail = await fn();
    results.push({ name, ok: true });
    log(`PASS ${name}${detail ? ` — ${detail}` : ''} (${Date.now() - t} ms)`);
    return true;
  } catch (e) {
    results.push({ name, ok: false, error: e });
    log(`FAIL ${name} — ${e instanceof Error ? e.message.split('\n').slice(0, 6).join(' | ') : String(e)} (${Date.now() - t} ms)`);
    return false;
  }
}

function finish(code) {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {
      try {
        c.kill('SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
  // Processes the test started that left code-server's process group (a terminal's own
  // session: the reference agent) are ended by their ids: those working in the scratch folder.
  if (scratch) {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
      try {
        if (readlinkSync(`/proc/${d}/cwd`).startsWith(scratch)) process.kill(Number(d), 'SIGTERM');
      } catch {
        /* gone, or not ours to see */
      }
    }
  }
  if (scratch && process.env.E2E_KEEP !== '1') {
    try {
      rmSync(scratch, { recursive: true, force: true, maxRetries: 20, retryDelay: 250 });
    } catch (e) {
      console.log(`could not remove ${scratch}: ${e.message}`);
    }
  } else if (scratch) {
    log(`scratch kept at ${scratch}`);
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  const failedNames = results.filter((r) => !r.ok).map((r) => r.name);
  if (failedNames.length) console.log(`failed: ${failedNames.join('; ')}`);
  console.log(`e2e: ${passed} passed, ${failed} failed (${((Date.now() - T0) / 1000).toFixed(1)} s)`);
  process.exit(code ?? (failed > 0 ? 1 : 0));
}

function fatal(msg) {
  results.push({ name: 'preflight', ok: false, error: new Error(msg) });
  log(`FAIL preflight — ${msg}`);
  finish(2);
}

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function which(name) {
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (d && executable(join(d, name))) return join(d, name);
  }
  return undefined;
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs, intervalMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last.message ?? last})` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// preflight
mkdirSync(ARTIFACTS, { recursive: true });
writeFileSync(join(ARTIFACTS, 'e2e-run.log'), '');
if (Number(process.versions.node.split('.')[0]) < 18) fatal(`node ${process.versions.node} is too old (need ≥ 18)`);
if (!existsSync(ENTRY)) fatal(`code-server not found at ${ENTRY}: run editor-client/scripts/install-code-server.sh`);
if (!executable(CHROMIUM)) fatal(`chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
if (!existsSync(VSIX)) fatal(`${VSIX} not found: run npm run build && npm run package in editor-client/`);
const CONDUCTOR = process.env.CONDUCTOR_BIN ?? (executable(join(REPO, '.venv', 'bin', 'conductor')) ? join(REPO, '.venv', 'bin', 'conductor') : which('conductor'));
if (!CONDUCTOR || !executable(CONDUCTOR)) fatal('the `conductor` console script was not found (set CONDUCTOR_BIN or create ../.venv)');
let playwright;
try {
  playwright = await import('playwright-core');
} catch (e) {
  fatal(`playwright-core is not installed (npm ci in editor-client/): ${e.message}`);
}
const { chromium } = playwright.default ?? playwright;
log(`code-server ${ENTRY}`);
log(`chromium ${CHROMIUM}; conductor ${CONDUCTOR}; vsix ${VSIX}`);

// ---------------------------------------------------------------------------------------------
// Two sample workspaces, one code-server. Nothing of Conductor is on PATH: the extension must
// find it by itself.
//   FRESH  — a .venv without Conductor, nothing anywhere else: the install notification, then
//            "Install Conductor into .venv/bin/python" (pip, in a terminal) makes it work.
//   W      — Conductor only in the workspace's .venv and no setting: found; diagnostics,
//            hover; a hand-off build waits for an agent and says so; "Start the reference
//            agent" completes it; rendered status and policy; closing the window leaves no
//            server process.
scratch = mkdtempSync(join(tmpdir(), 'conductor-e2e-'));
const W = join(scratch, 'workspace');
const FRESH = join(scratch, 'fresh');
const U = join(scratch, 'user-data');
const E = join(scratch, 'extensions');
const HOME = join(scratch, 'home');
for (const d of [W, FRESH, U, E, HOME, join(scratch, 'xdg-config'), join(scratch, 'xdg-data'), join(U, 'User'), join(W, '.conductor'), join(W, 'examples'), join(W, 'src'), join(FRESH, '.conductor')]) {
  mkdirSync(d, { recursive: true });
}
const BROKEN_POLICY = `# Project policy (deliberately broken for the e2e test)
global_constraints:
  - Keep the public API stable
file_rules:
  protected_patterns: "secrets/**"
behavior:
  max_diff_lines: -5
  timeout_secs: 30
`;
const GOOD_POLICY = `# Project policy
global_constraints:
  - Keep the public API stable
file_rules:
  protected_patterns: ["secrets/**"]
behavior:
  max_diff_lines: 400
  timeout_seconds: 120
`;
writeFileSync(join(W, '.conductor', 'policy.yaml'), BROKEN_POLICY);
writeFileSync(join(W, '.conductor', 'config.yaml'), 'mode: handoff\nforks: 1\n');
writeFileSync(join(FRESH, '.conductor', 'policy.yaml'), 'behavior:\n  max_diff_lines: -1\n');
writeFileSync(join(W, 'src', 'greet.py'), '"""Greetings."""\n');
writeFileSync(join(W, 'README.md'), '# Sample project for the Conductor e2e test\n');
for (const dir of [W, FRESH]) {
  const git = (...args) => spawnSync('git', ['-c', 'user.name=e2e', '-c', 'user.email=e2e@example.invalid', ...args], { cwd: dir, encoding: 'utf8' });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'sample project');
}

// Virtual environments made from the repository's: its libraries are visible through a .pth
// file (fast, offline); Conductor itself only where the test says so.
const REPO_PY = join(dirname(CONDUCTOR), 'python');
const probe = spawnSync(REPO_PY, ['-c', 'import sys, sysconfig; print(sys._base_executable); print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' });
if (probe.status !== 0) fatal(`cannot read the repository's virtual environment (${REPO_PY}): ${probe.stderr}`);
const [BASE_PY, REPO_SITE] = probe.stdout.trim().split('\n');
function makeVenv(folder, withConductor) {
  const venv = join(folder, '.venv');
  const r = spawnSync(BASE_PY, ['-m', 'venv', '--without-pip', venv], { encoding: 'utf8' });
  if (r.status !== 0) fatal(`python -m venv ${venv} failed: ${r.stderr}`);
  const site = spawnSync(join(venv, 'bin', 'python'), ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(join(site, '_e2e_libraries.pth'), [REPO_SITE, ...(withConductor ? [join(REPO, 'server')] : [])].join('\n') + '\n');
  const has = spawnSync(join(venv, 'bin', 'python'), ['-c', 'import conductor.lsp'], { encoding: 'utf8' }).status === 0;
  if (has !== withConductor) fatal(`${venv}: conductor importable = ${has}, wanted ${withConductor}`);
  return join(venv, 'bin', 'python');
}
makeVenv(W, true);
// A complete contract-2.0 task (the schema's own example, its checksum correct) with one fault: a
// confidence score above 1. It is the only problem, so the Problems panel shows it in view.
const badTask = spawnSync(REPO_PY, ['-c', [
  'import json, sys',
  'from conductor.contract.task import Task',
  'from conductor.contract.checksum import task_checksum',
  "t = dict(Task.model_json_schema()['examples'][0])",
  "t['confidence'] = {'score': 1.5, 'level': 'high', 'factors': []}",
  "t.pop('checksum'); t['checksum'] = task_checksum(t)",
  'sys.stdout.write(json.dumps(t, indent=2) + chr(10))',
].join('\n')], { encoding: 'utf8' });
if (badTask.status !== 0) fatal(`cannot write the sample task: ${badTask.stderr}`);
writeFileSync(join(W, 'examples', 'step_001.task.json'), badTask.stdout);
makeVenv(FRESH, false);

// PATH without any `conductor` (nor a python3 that has it): "no Conductor anywhere".
const cleanPath = (process.env.PATH ?? '/usr/bin:/bin').split(':').filter((d) => d && !executable(join(d, 'conductor')) && !d.startsWith(REPO)).join(':');
const py3 = spawnSync('python3', ['-c', 'import conductor'], { env: { PATH: cleanPath }, encoding: 'utf8' });
if (py3.status === 0) fatal(`python3 on PATH (${cleanPath}) can import conductor; the "no Conductor anywhere" case cannot be set up`);

const AGENT_COMMAND = process.env.E2E_AGENT_COMMAND ?? `${process.execPath} ${join(HERE, 'fixtures', 'agent-step.mjs')}`;
writeFileSync(
  join(U, 'User', 'settings.json'),
  JSON.stringify(
    {
      'workbench.startupEditor': 'none',
      'workbench.tips.enabled': false,
      'security.workspace.trust.enabled': false,
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'telemetry.telemetryLevel': 'off',
      'workbench.enableExperiments': false,
      'editor.hover.delay': 100,
      'terminal.integrated.enablePersistentSessions': false,
      // What "Install Conductor into …" gives pip: this checkout, offline.
      'conductor.installSpec': `--no-deps --no-build-isolation --no-index ${REPO}`,
      // What the reference agent runs per task ("Start the reference agent").
      'conductor.agent.command': AGENT_COMMAND,
    },
    null,
    2,
  ),
);

const env = {
  ...process.env,
  PATH: cleanPath,
  HOME,
  SHELL: '/bin/bash',
  XDG_CONFIG_HOME: join(scratch, 'xdg-config'),
  XDG_DATA_HOME: join(scratch, 'xdg-data'),
  GIT_AUTHOR_NAME: 'e2e',
  GIT_AUTHOR_EMAIL: 'e2e@example.invalid',
  GIT_COMMITTER_NAME: 'e2e',
  GIT_COMMITTER_EMAIL: 'e2e@example.invalid',
  PIP_NO_INDEX: '1',
  PIP_DISABLE_PIP_VERSION_CHECK: '1',
};
for (const k of Object.keys(env)) if (/API_KEY$|^VIRTUAL_ENV$|^PYTHONPATH$|^CONDUCTOR_/.test(k)) delete env[k];

/** Every `conductor lsp` process whose working folder is one of ours (anywhere on the machine). */
function ourServers() {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!(argv.some((a) => a.endsWith('conductor')) && argv.includes('lsp'))) continue;
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue; // exited, not yet reaped
      const cwd = readlinkSync(`/proc/${d}/cwd`);
      if (cwd.startsWith(scratch)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** The Conductor output channel's log file of the current window(s). */
function conductorLog() {
  const found = [];
  const walk = (d) => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      if (f.isDirectory()) walk(join(d, f.name));
      else if (/Conductor\.log$/.test(f.name)) found.push(join(d, f.name));
    }
  };
  try {
    walk(join(U, 'logs'));
  } catch {
    /* none yet */
  }
  found.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  return found.length ? readFileSync(found[found.length - 1], 'utf8') : '';
}

// ---------------------------------------------------------------------------------------------
// install the .vsix and serve
const installed = await check('extension installs into code-server', async () => {
  const r = spawnSync(process.execPath, [ENTRY, '--user-data-dir', U, '--extensions-dir', E, '--install-extension', VSIX], { env, encoding: 'utf8', timeout: 120_000 });
  writeFileSync(join(ARTIFACTS, 'code-server-install.log'), `${r.stdout}\n${r.stderr}`);
  if (r.status !== 0) throw new Error(`--install-extension exited ${r.status}: ${r.stderr.slice(-500)}`);
  const dirs = readdirSync(E).filter((d) => d.startsWith('conductor-runtime.conductor-vscode'));
  if (dirs.length === 0) throw new Error(`no conductor-runtime.conductor-vscode-* folder in ${E}`);
  return dirs[0];
});
if (!installed) finish(1);

const port = await freePort();
const csLog = join(ARTIFACTS, 'code-server.log');
writeFileSync(csLog, '');
const cs = spawn(
  process.execPath,
  [ENTRY, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--user-data-dir', U, '--extensions-dir', E, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override'],
  { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
);
children.push(cs);
cs.stdout.on('data', (d) => appendFileSync(csLog, d));
cs.stderr.on('data', (d) => appendFileSync(csLog, d));
const base = `http://127.0.0.1:${port}`;

const served = await check('code-server serves', async () => {
  await waitFor('/healthz', async () => (await fetch(`${base}/healthz`)).ok, 30_000);
  return `port ${port}`;
});
if (!served) finish(1);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base }).catch(() => undefined);
let page = await context.newPage();
const consoleErrors = [];
const watchConsole = (p) => p.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});
watchConsole(page);

async function shot(name) {
  const p = join(ARTIFACTS, name);
  await page.screenshot({ path: p, animations: 'disabled' });
  log(`screenshot ${p}`);
}

const QI = '.quick-input-widget';
const QI_INPUT = `${QI} .quick-input-box input`;

async function closeQuickInput() {
  if (await page.locator(QI).isVisible().catch(() => false)) {
    await page.keyboard.press('Escape');
    await page.locator(QI).waitFor({ state: 'hidden', timeout: 3000 }).catch(() => undefined);
  }
}

/** Opens the command palette and types `text`; returns the labels of the rows shown. */
async function paletteRows(text) {
  await closeQuickInput();
  await page.keyboard.press('F1');
  await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator(QI_INPUT).fill(`>${text}`);
  await sleep(400);
  return page.locator(`${QI} .monaco-list-row`).evaluateAll((rows) => rows.map((r) => r.getAttribute('aria-label') || r.textContent || ''));
}

/** Runs a palette command by its exact label ("Conductor: Validate workspace"). */
async function runCommand(label) {
  const rows = await waitFor(`palette row "${label}"`, async () => {
    const r = await paletteRows(label);
    return r.some((x) => x.includes(label)) ? r : undefined;
  }, 20_000, 500);
  const row = page.locator(`${QI} .monaco-list-row`).filter({ hasText: label }).first();
  await row.click();
  return rows;
}

async function toasts() {
  return page.locator('.notifications-toasts .notification-toast .notification-list-item-message').evaluateAll((els) => els.map((e) => e.textContent || ''));
}

async function openFile(relPath) {
  await closeQuickInput();
  await page.keyboard.press('Control+P');
  await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: 10_000 });
  await page.locator(QI_INPUT).fill(relPath);
  const name = relPath.split('/').pop();
  const row = page.locator(`${QI} .monaco-list-row[aria-label^="${name}"]`).first();
  await row.waitFor({ timeout: 10_000 });
  await row.click();
  await page.locator(`.tab[aria-label^="${name}"]`).first().waitFor({ timeout: 10_000 });
  await sleep(300);
}

async function gotoLine(line, column) {
  await closeQuickInput();
  await page.keyboard.press('Control+G');
  await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: 5000 });
  await page.locator(QI_INPUT).fill(`:${line}:${column}`);
  await sleep(200);
  await page.keyboard.press('Enter');
  await sleep(200);
}

function schemaDescription(kind, path) {
  try {
    const schema = JSON.parse(readFileSync(join(REPO, 'schemas', `${kind}.schema.json`), 'utf8'));
    let node = schema;
    for (const key of path) {
      const props = node.properties ?? {};
      node = props[key];
      while (node && node.$ref) node = schema.$defs?.[node.$ref.split('/').pop()];
      if (!node) return undefined;
    }
    return node.description;
  } catch {
    return undefined;
  }
}

const statusBar = () => page.locator('.statusbar-item').filter({ hasText: /Conductor/ }).first();
const viewRows = () => page.locator('[id="workbench.view.extension.conductor"] .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') || r.textContent || ''));
const problemRows = () => page.locator('.markers-panel .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') || ''));

async function openWorkspace(folder) {
  await page.goto(`${base}/?folder=${encodeURIComponent(folder)}`, { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await sleep(1500);
}

/** Text of every rendered Markdown preview (webviews are nested iframes). */
async function previewTexts() {
  const out = [];
  for (const f of page.frames()) {
    if (f === page.mainFrame()) continue;
    const t = await f.locator('body').innerText({ timeout: 1000 }).catch(() => '');
    const html = await f.locator('body').innerHTML({ timeout: 1000 }).catch(() => '');
    if (t.trim()) out.push({ text: t, html });
  }
  return out;
}

async function toastButton(label) {
  return page.locator('.notifications-toasts .notification-toast .monaco-button').filter({ hasText: label }).first();
}

try {
  // ---------------------------------------------------------------- no Conductor anywhere
  await check('no Conductor anywhere: one notification offers Install into .venv / Choose interpreter / Set path', async () => {
    await openWorkspace(FRESH);
    const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: /Conductor is not installed/ }).first();
    await toast.waitFor({ timeout: 60_000 }).catch(async (e) => {
      await shot('not-installed.png');
      throw new Error(`${e.message}; toasts: ${(await toasts()).join(' / ')}`);
    });
    await page.locator('.notifications-toasts .notification-toast.notification-fade-in-done').first().waitFor({ timeout: 3000 }).catch(() => undefined);
    const buttons = (await toast.locator('.monaco-button').allTextContents()).map((b) => b.trim());
    await shot('not-installed.png');
    const want = ['Install Conductor into .venv/bin/python', 'Choose interpreter', 'Set path'];
    if (JSON.stringify(buttons) !== JSON.stringify(want)) throw new Error(`buttons: ${buttons.join(' | ')}`);
    if ((await page.locator('.notifications-toasts .notification-toast').filter({ hasText: /Conductor is not installed/ }).count()) !== 1) throw new Error('more than one "not installed" notification');
    const bar = (await statusBar().textContent())?.trim();
    return `buttons: ${buttons.join(' | ')}; status bar "${bar}"`;
  });

  await check('"Install Conductor into .venv/bin/python" runs pip in a terminal; then diagnostics appear and the toast is gone', async () => {
    await (await toastButton('Install Conductor into')).click();
    await openFile('.conductor/policy.yaml');
    await page.locator('.terminal-wrapper, .xterm').first().waitFor({ timeout: 15_000 });
    await page.keyboard.press('Control+Shift+M');
    const rows = await waitFor('policy diagnostic after the install', async () => {
      const r = await problemRows();
      return r.some((x) => /max_diff_lines|-1|minimum/.test(x)) ? r : undefined;
    }, 90_000, 500).catch(async (e) => {
      await shot('installed.png');
      throw new Error(`${e.message}; rows: ${(await problemRows()).join(' / ')}; toasts: ${(await toasts()).join(' / ')}`);
    });
    await sleep(500);
    await shot('installed.png');
    const left = (await toasts()).filter((t) => /not installed|could not find/i.test(t));
    if (left.length) throw new Error(`the old toast is still on screen: ${left.join(' / ')}`);
    if (!existsSync(join(FRESH, '.venv', 'bin', 'conductor'))) throw new Error('pip did not install conductor into the workspace .venv');
    return `${rows.length} problem row(s), e.g. "${rows[0]}"`;
  });

  // ---------------------------------------------------------------- Conductor only in .venv
  await check('first run with Conductor only in the workspace .venv and no setting: server found', async () => {
    await openWorkspace(W);
    await waitFor('server running', async () => {
      const bad = (await toasts()).find((x) => /not installed|failed to start|crashed/i.test(x));
      if (bad) throw new Error(bad);
      const label = await statusBar().getAttribute('aria-label');
      return label && /server running/.test(label);
    }, 60_000, 500);
    const log = await waitFor('discovery in the Conductor log', async () => {
      const l = conductorLog();
      return /found via workspace-venv/.test(l) ? l : undefined;
    }, 10_000, 300);
    return (/starting (.*) \(found via workspace-venv\)/.exec(log) ?? [])[0];
  });

  await check('palette lists each Conductor command once (raw server ids hidden)', async () => {
    const want = ['Conductor: Build…', 'Conductor: Status', 'Conductor: Show effective policy', 'Conductor: Run the waiting step…', 'Conductor: Validate workspace', 'Conductor: Restart language server'];
    const problems = [];
    for (const w of want) {
      const rows = await waitFor(`palette row ${w}`, async () => {
        const r = (await paletteRows(w)).filter((x) => x.startsWith(w));
        return r.length > 0 ? r : undefined;
      }, 10_000, 300).catch(() => []);
      if (rows.length !== 1) problems.push(`${w}: ${rows.length} rows`);
    }
    await paletteRows('Conductor: ');
    await shot('command-palette.png');
    await closeQuickInput();
    if (problems.length) throw new Error(problems.join('; '));
    return `${want.length} commands, each once`;
  });

  await check('Problems panel lists the policy diagnostics', async () => {
    await openFile('.conductor/policy.yaml');
    await page.keyboard.press('Control+Shift+M');
    const rows = await waitFor('policy diagnostics', async () => {
      const labels = await problemRows();
      return labels.filter((l) => /protected_patterns|max_diff_lines|timeout_secs/.test(l)).length >= 3 ? labels : undefined;
    }, 30_000, 500).catch(async (e) => {
      await shot('problems-panel.png');
      throw new Error(`${e.message}; rows: ${(await problemRows()).join(' / ')}`);
    });
    await shot('problems-panel.png');
    return `${rows.length} rows`;
  });

  await check('hover on a policy key shows its schema description', async () => {
    const want = schemaDescription('policy', ['behavior', 'max_diff_lines']) ?? 'Most lines';
    await page.locator('.monaco-editor .view-lines').first().click();
    await gotoLine(7, 5);
    await page.keyboard.press('Control+K');
    await page.keyboard.press('Control+I');
    const text = await waitFor('hover widget', async () => (await page.locator('.monaco-hover-content').allTextContents()).find((t) => t.includes(want.slice(0, 30))), 15_000, 300);
    await shot('hover.png');
    await page.keyboard.press('Escape');
    return `"${text.slice(0, 60)}"`;
  });

  await check('a task file: each problem reported once, by Conductor only', async () => {
    await openFile('examples/step_001.task.json');
    const rows = await waitFor('task diagnostics', async () => {
      const l = (await problemRows()).filter((x) => /step_001\.task\.json/.test(x) || /confidence|checksum|nonce|score/i.test(x));
      return l.some((x) => /score|1\.5|maximum/i.test(x)) ? l : undefined;
    }, 20_000, 500);
    await sleep(1500); // let a second (JSON-schema) source report, if there were one
    const all = (await problemRows()).filter((x) => !/policy\.yaml/.test(x));
    const scoreRows = all.filter((x) => /1\.5|score|maximum/i.test(x));
    if (scoreRows.length !== 1) throw new Error(`the score problem is reported ${scoreRows.length} times: ${scoreRows.join(' / ')}`);
    if (all.some((x) => /, source: json|\bjson\b.*schema/i.test(x))) throw new Error(`a JSON-schema diagnostic besides Conductor's: ${all.join(' / ')}`);
    return `${rows.length} rows, score reported once`;
  });

  // The user fixes the policy, then builds in handoff mode.
  writeFileSync(join(W, '.conductor', 'policy.yaml'), GOOD_POLICY);
  await page.keyboard.press('Escape');

  let planStarted = false;
  await check('a hand-off build: one notification says the step waits for an agent, with the three ways to run it', async () => {
    await runCommand('Conductor: Build…');
    await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: 10_000 });
    await page.locator(QI_INPUT).fill(GOAL);
    await shot('build-goal.png');
    await page.keyboard.press('Enter');
    const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: /is waiting for an agent to claim it/ }).first();
    await toast.waitFor({ timeout: 60_000 }).catch(async (e) => {
      await shot('handoff-waiting.png');
      throw new Error(`${e.message}; toasts: ${(await toasts()).join(' / ')}`);
    });
    planStarted = true;
    await sleep(2500); // let the waiting time tick in the progress line and the status bar
    const text = (await toast.locator('.notification-list-item-message').textContent())?.trim();
    const buttons = (await toast.locator('.monaco-button').allTextContents()).map((b) => b.trim());
    for (const want of ['Copy prompt for your agent', 'Use the MCP tools', 'Start the reference agent']) {
      if (!buttons.includes(want)) throw new Error(`no "${want}" button: ${buttons.join(' | ')}`);
    }
    if (!/Planning \(strategy: default\).*step_000/.test(text ?? '')) throw new Error(`message: ${text}`);
    await shot('handoff-waiting.png');
    return `"${text}"`;
  });

  await check('progress, status bar and view say "waiting for an agent to claim step_000 (N s)"', async () => {
    if (!planStarted) throw new Error('no build');
    const progress = await waitFor('progress line', async () => (await toasts()).find((t) => /waiting for an agent to claim step_000 \(\d+ s\)/.test(t)), 10_000, 300).catch(async () => {
      // the progress toast may be collapsed behind the notification: look in the notification centre
      return undefined;
    });
    const bar = (await statusBar().textContent())?.trim() ?? '';
    if (!/waiting for agent \(step_000, \d+ s\)/.test(bar)) throw new Error(`status bar: "${bar}"`);
    await runCommand('Conductor: Show plans view');
    const rows = await waitFor('planning step in the view', async () => {
      const r = await viewRows();
      return r.some((x) => /^Step Planning \(strategy: default\), waiting for an agent$/.test(x)) ? r : undefined;
    }, 15_000, 300).catch(async (e) => {
      throw new Error(`${e.message}; rows: ${(await viewRows()).join(' / ')}`);
    });
    await shot('handoff-waiting-view.png');
    if (!progress) throw new Error(`no progress line with the waiting time; toasts: ${(await toasts()).join(' / ')}`);
    return `progress "${progress}"; status bar "${bar}"; view ${rows.join(' / ')}`;
  });

  await check('"Start the reference agent" completes the plan; the tree shows every step done', async () => {
    if (!planStarted) throw new Error('no build');
    const button = page.locator('.notifications-toasts .notification-toast .monaco-button').filter({ hasText: 'Start the reference agent' }).first();
    if (!(await button.isVisible().catch(() => false))) {
      await runCommand('Conductor: Run the waiting step…');
      await page.locator(`${QI} .monaco-list-row`).filter({ hasText: 'Start the reference agent' }).first().click();
    } else {
      await button.click();
    }
    const rows = await waitFor('every step done', async () => {
      const r = await viewRows();
      const steps = r.filter((x) => x.startsWith('Step '));
      return steps.length >= 2 && steps.every((x) => /, done$/.test(x)) && r.some((x) => /^Plan .*, done,/.test(x)) ? r : undefined;
    }, 120_000, 500).catch(async (e) => {
      await shot('conductor-view-done.png');
      throw new Error(`${e.message}; rows: ${(await viewRows()).join(' / ')}`);
    });
    const bar = (await statusBar().textContent())?.trim() ?? '';
    await shot('conductor-view-done.png');
    if (!/Conductor: done 1\/1/.test(bar)) throw new Error(`status bar "${bar}"`);
    return `${rows.join(' / ')}; status bar "${bar}"`;
  });

  await check('"Conductor: Status" opens rendered Markdown (no literal **)', async () => {
    await runCommand('Conductor: Status');
    const view = await waitFor('rendered status', async () => (await previewTexts()).find((p) => p.text.includes('Conductor status') && p.text.includes('Add greet()')), 20_000, 500).catch(async (e) => {
      await shot('status-rendered.png');
      const tabs = await page.locator('.tab').evaluateAll((ts) => ts.map((t) => t.getAttribute('aria-label')));
      throw new Error(`${e.message}; tabs: ${tabs.join(' / ')}; toasts: ${(await toasts()).join(' / ')}; log: ${conductorLog().split('\n').filter((l) => /error|fail/i.test(l)).slice(-3).join(' | ')}`);
    });
    await shot('status-rendered.png');
    if (view.text.includes('**')) throw new Error(`literal ** in the rendered status: ${view.text.slice(0, 300)}`);
    if (!/<table|<strong/.test(view.html)) throw new Error('the status is not rendered (no table, no bold)');
    return `"${view.text.replace(/\s+/g, ' ').slice(0, 100)}…"`;
  });

  await check('"Show effective policy" renders each value with its origin as a file:line link', async () => {
    await runCommand('Conductor: Show effective policy');
    const view = await waitFor('rendered policy', async () => (await previewTexts()).find((p) => p.text.includes('Effective policy') && p.text.includes('max_diff_lines')), 20_000, 500);
    await shot('policy-rendered.png');
    if (!/policy\.yaml:\d+/.test(view.text)) throw new Error(`no file:line origin: ${view.text.slice(0, 300)}`);
    if (!/<a [^>]*href="[^"]*policy\.yaml#L\d+"[^>]*>\s*\.conductor\/policy\.yaml:\d+\s*<\/a>/.test(view.html)) throw new Error(`origins are not links: ${view.html.slice(0, 600)}`);
    if (view.text.includes('```') || view.text.includes('"value"')) throw new Error('a JSON dump, not a rendered policy');
    return (/max_diff_lines: 400 — project · \.conductor\/policy\.yaml:\d+/.exec(view.text.replace(/\s+/g, ' ')) ?? [view.text.slice(0, 80)])[0];
  });

  await check('"Restart language server" leaves exactly one server process', async () => {
    const before = ourServers();
    await runCommand('Conductor: Restart language server');
    await sleep(500);
    const after = await waitFor('one new server', async () => {
      const now = ourServers();
      return now.length === 1 && !before.includes(now[0]) ? now : undefined;
    }, 20_000, 250).catch(() => {
      throw new Error(`servers before ${before.join(',')} after ${ourServers().join(',')}`);
    });
    return `${before.join(',')} → ${after.join(',')}`;
  });

  await check('closing the window leaves no conductor lsp process (ps)', async () => {
    await page.close({ runBeforeUnload: true });
    const left = await waitFor('no server left', async () => (ourServers().length === 0 ? [] : undefined), 20_000, 250).catch(() => ourServers());
    const ps = spawnSync('ps', ['-eo', 'pid,ppid,args'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => /conductor.*\blsp\b/.test(l) && left.some((p) => l.trim().startsWith(String(p))));
    if (left.length) throw new Error(`still running: ${ps.join(' | ')}`);
    page = await context.newPage();
    watchConsole(page);
    return 'none left';
  });
} finally {
  // Keep the extension host's log of the Conductor output channel next to the screenshots.
  try {
    const logs = join(U, 'logs');
    const found = [];
    const walk = (d) => {
      for (const f of readdirSync(d, { withFileTypes: true })) {
        if (f.isDirectory()) walk(join(d, f.name));
        else if (/Conductor\.log$/.test(f.name) || f.name === 'exthost.log') found.push(join(d, f.name));
      }
    };
    if (existsSync(logs)) walk(logs);
    for (const f of found) copyFileSync(f, join(ARTIFACTS, f.endsWith('exthost.log') ? 'exthost.log' : 'conductor-output.log'));
  } catch (e) {
    log(`could not copy logs: ${e.message}`);
  }
  if (consoleErrors.length) writeFileSync(join(ARTIFACTS, 'browser-console.log'), consoleErrors.join('\n'));
  await browser.close().catch(() => undefined);
}
finish();
