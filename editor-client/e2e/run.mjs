#!/usr/bin/env node
// End-to-end test of the Conductor extension in a real VS Code (code-server 4.100.3) driven by
// a real browser (Debian chromium through playwright-core).
//
//   node e2e/run.mjs            (after `npm run build && npm run package`)
//
// Environment:
//   CODE_SERVER_DIR   code-server cache (default ~/.cache/conductor-e2e/code-server; see
//                     scripts/install-code-server.sh)
//   CHROMIUM          browser executable (default /usr/bin/chromium)
//   CONDUCTOR_BIN     the `conductor` console script (default ../.venv/bin/conductor, else PATH)
//   E2E_ARTIFACTS     screenshots and logs (default ../tests/e2e/artifacts)
//   E2E_VSIX          the packaged extension (default ./conductor-vscode.vsix)
//   E2E_KEEP=1        keep the scratch folder
//   E2E_AGENT_COMMAND the command the reference agent runs for each task
//
// Prints one line per check and a final "e2e: N passed, M failed"; exit code 1 on any failure.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, appendFileSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  if (scratch && process.env.E2E_KEEP !== '1') {
    rmSync(scratch, { recursive: true, force: true });
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

/** Process ids of `conductor lsp` servers started under our code-server (by walking /proc). */
function lspPids() {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited */
    }
  }
  const under = (pid) => {
    for (let p = pid, n = 0; p > 1 && n < 64; p = parent.get(p) ?? 0, n++) if (p === cs.pid) return true;
    return false;
  };
  return [...parent.keys()].filter((pid) => {
    if (!under(pid)) return false;
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.some((a) => a.endsWith('conductor')) && argv.includes('lsp');
    } catch {
      return false;
    }
  });
}

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
// sample workspace
scratch = mkdtempSync(join(tmpdir(), 'conductor-e2e-'));
const W = join(scratch, 'workspace');
const U = join(scratch, 'user-data');
const E = join(scratch, 'extensions');
for (const d of [W, U, E, join(scratch, 'xdg-config'), join(scratch, 'xdg-data'), join(U, 'User'), join(W, '.conductor'), join(W, 'examples'), join(W, 'src')]) {
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
  # Steps below 0.95 wait for a human: the e2e answers the approval prompt in VS Code.
  approval_below: 0.95
  caution_below: 0.97
`;
writeFileSync(join(W, '.conductor', 'policy.yaml'), BROKEN_POLICY);
writeFileSync(join(W, '.conductor', 'config.yaml'), 'mode: handoff\nforks: 1\n');
writeFileSync(
  join(W, 'examples', 'step_001.task.json'),
  JSON.stringify(
    {
      task_id: 'step_001',
      title: 'Add a greeting',
      instruction: 'Add a function greet(name) to src/greet.py that returns "Hello, <name>!".',
      allowed_files: ['src/greet.py'],
      constraints: ['Keep the public API stable'],
      timeout_seconds: 300,
      confidence: { score: 1.5, level: 'high' },
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(join(W, 'src', 'greet.py'), '"""Greetings."""\n');
writeFileSync(join(W, 'README.md'), '# Sample project for the Conductor e2e test\n');
const git = (...args) => spawnSync('git', args, { cwd: W, encoding: 'utf8' });
git('init', '-q', '-b', 'main');
git('-c', 'user.name=e2e', '-c', 'user.email=e2e@example.invalid', 'add', '-A');
git('-c', 'user.name=e2e', '-c', 'user.email=e2e@example.invalid', 'commit', '-q', '-m', 'sample project');

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
      'conductor.trace.server': 'messages',
      // VS Code replaces the server's PATH with the login shell's, so name the server explicitly.
      'conductor.serverCommand': [CONDUCTOR, 'lsp'],
    },
    null,
    2,
  ),
);

const venvBin = dirname(CONDUCTOR);
const env = {
  ...process.env,
  PATH: `${venvBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  XDG_CONFIG_HOME: join(scratch, 'xdg-config'),
  XDG_DATA_HOME: join(scratch, 'xdg-data'),
  GIT_AUTHOR_NAME: 'e2e',
  GIT_AUTHOR_EMAIL: 'e2e@example.invalid',
  GIT_COMMITTER_NAME: 'e2e',
  GIT_COMMITTER_EMAIL: 'e2e@example.invalid',
};
delete env.CONDUCTOR_API_KEY;
delete env.GEMINI_API_KEY;

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
  [ENTRY, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--user-data-dir', U, '--extensions-dir', E, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override', W],
  { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
);
children.push(cs);
cs.stdout.on('data', (d) => appendFileSync(csLog, d));
cs.stderr.on('data', (d) => appendFileSync(csLog, d));
const base = `http://127.0.0.1:${port}`;

const served = await check('code-server serves the workspace', async () => {
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
const page = await context.newPage();
const consoleErrors = [];
page.on('console', (m) => {
  if (m.type() === 'error') consoleErrors.push(m.text());
});

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

let agent;
try {
  await check('workbench loads in chromium', async () => {
    await page.goto(`${base}/?folder=${encodeURIComponent(W)}`, { waitUntil: 'domcontentloaded' });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await sleep(1500);
    return page.url();
  });

  await check('extension activates: Conductor status bar item and activity bar entry', async () => {
    const item = page.locator('.statusbar-item').filter({ hasText: /Conductor/ }).first();
    await item.waitFor({ timeout: 30_000 });
    const activity = page.locator('.activitybar .action-item a[aria-label^="Conductor"], .activitybar .action-item [aria-label^="Conductor"]').first();
    await activity.waitFor({ timeout: 10_000 });
    return `status bar "${(await item.textContent())?.trim()}"`;
  });

  await check('palette lists the Conductor commands (wrappers shown, raw server ids hidden)', async () => {
    const want = ['Conductor: Build…', 'Conductor: Explore…', 'Conductor: Validate workspace', 'Conductor: Status', 'Conductor: Show effective policy', 'Conductor: Explain step', 'Conductor: Approve step', 'Conductor: Resume', 'Conductor: Show events', 'Conductor: Handoff metrics', 'Conductor: Verify provenance', 'Conductor: Init project', 'Conductor: Set API key', 'Conductor: Show plans view', 'Conductor: Open task', 'Conductor: Restart language server'];
    const problems = [];
    for (const w of want) {
      // The list is virtualised: filter down to the one command, then count its rows.
      const rows = await waitFor(`palette row ${w}`, async () => {
        const r = (await paletteRows(w)).filter((x) => x.startsWith(w));
        return r.length > 0 ? r : undefined;
      }, 10_000, 300).catch(() => []);
      if (rows.length !== 1) problems.push(`${w}: ${rows.length} rows`);
    }
    await paletteRows('Conductor: ');
    await shot('command-palette.png');
    await closeQuickInput();
    if (problems.length) throw new Error(`expected each once (raw server ids hidden): ${problems.join('; ')}`);
    return `${want.length} commands, each listed once`;
  });

  let serverUp = false;
  await check('language server starts (conductor lsp found on PATH)', async () => {
    // The language client reports a start failure as a toast; the view shows a welcome text then.
    await waitFor('server running', async () => {
      const t = await toasts();
      const bad = t.find((x) => /could not find its language server|failed to start|crashed/i.test(x));
      if (bad) throw new Error(bad);
      const tip = await page.locator('.statusbar-item').filter({ hasText: /Conductor/ }).first().getAttribute('aria-label');
      return tip !== null && /server running/.test(tip) ? true : undefined;
    }, 30_000, 500).catch(async (e) => {
      throw new Error(`${e.message}; toasts: ${(await toasts()).join(' / ')}`);
    });
    serverUp = true;
  });

  await check('Problems panel lists the policy diagnostics', async () => {
    await openFile('.conductor/policy.yaml');
    await page.keyboard.press('Control+Shift+M');
    const rows = await waitFor('policy diagnostics in Problems', async () => {
      const labels = await page.locator('.markers-panel .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') || ''));
      const hits = labels.filter((l) => /protected_patterns|max_diff_lines|timeout_secs/.test(l));
      return hits.length >= 3 ? labels : undefined;
    }, 30_000, 500).catch(async (e) => {
      const labels = await page.locator('.markers-panel .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') || ''));
      await shot('problems-panel.png');
      throw new Error(`${e.message}; rows: ${labels.join(' / ') || '(none)'}`);
    });
    await shot('problems-panel.png');
    return `${rows.length} rows, e.g. "${rows.find((l) => /max_diff_lines/.test(l))}"`;
  });

  await check('hover on a policy key shows its schema description', async () => {
    const want = schemaDescription('policy', ['behavior', 'max_diff_lines']) ?? 'Most lines';
    await page.locator('.monaco-editor .view-lines').first().click();
    await gotoLine(7, 5);
    await page.keyboard.press('Control+K');
    await page.keyboard.press('Control+I');
    const text = await waitFor('hover widget', async () => {
      const texts = await page.locator('.monaco-hover-content').allTextContents();
      return texts.find((t) => t.includes(want.slice(0, 30)));
    }, 15_000, 300).catch(async (e) => {
      await shot('hover.png');
      const t = await page.locator('.monaco-hover-content').allTextContents().catch(() => []);
      throw new Error(`${e.message}; wanted "${want.slice(0, 30)}"; hover: ${t.join(' / ') || '(none)'}`);
    });
    await shot('hover.png');
    await page.keyboard.press('Escape');
    return `"${text.slice(0, 80)}"`;
  });

  await check('task file outside .conductor gets schema diagnostics too', async () => {
    await openFile('examples/step_001.task.json');
    const labels = await waitFor('task diagnostics', async () => {
      const l = await page.locator('.markers-panel .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') || ''));
      return l.some((x) => /step_001\.task\.json/.test(x)) && l.some((x) => /1\.5|maximum|score|confidence|checksum/i.test(x)) ? l : undefined;
    }, 20_000, 500);
    return `${labels.length} rows`;
  });

  await check('"Conductor: Validate workspace" from the palette shows a summary', async () => {
    const before = new Set(await toasts());
    await runCommand('Conductor: Validate workspace');
    const msg = await waitFor('validate notification', async () => (await toasts()).find((t) => !before.has(t) && /^Conductor: .*(error|problem|warning)/.test(t)), 30_000, 300).catch(async (e) => {
      throw new Error(`${e.message}; toasts: ${(await toasts()).join(' / ')}`);
    });
    await page.locator('.notifications-toasts .notification-toast.notification-fade-in-done').first().waitFor({ timeout: 3000 }).catch(() => undefined);
    await shot('validate-notification.png');
    const n = Number(/(\d+) errors?/.exec(msg)?.[1] ?? 0);
    if (n < 3) throw new Error(`expected at least the 3 policy errors in "${msg}"`);
    return `"${msg}"`;
  });

  // The user fixes the policy, then builds.
  writeFileSync(join(W, '.conductor', 'policy.yaml'), GOOD_POLICY);
  await page.keyboard.press('Escape');

  let built = false;
  await check('"Conductor: Build…" from the palette asks for a goal and starts a plan', async () => {
    if (!serverUp) throw new Error('language server is not running');
    await runCommand('Conductor: Build…');
    await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: 10_000 });
    await sleep(300);
    const title = await page.locator(`${QI} .quick-input-title`).textContent().catch(() => '');
    await page.locator(QI_INPUT).fill(GOAL);
    await shot('build-goal.png');
    await page.keyboard.press('Enter');
    // Progress from the server's work-done progress, or the finished message.
    await waitFor('build progress or result', async () => {
      const t = await toasts();
      const bad = t.find((x) => /failed|does not offer|error/i.test(x) && /build|executeCommand|conductor/i.test(x));
      if (bad) throw new Error(bad);
      return (await page.locator('.notifications-toasts .notification-toast').count()) > 0 || (await page.locator('.statusbar-item .codicon-loading, .statusbar-item .codicon-sync').count()) > 0;
    }, 20_000, 300);
    built = true;
    return `input "${title}"; toasts: ${(await toasts()).join(' / ')}`;
  });

  const viewRows = () => page.locator('[id="workbench.view.extension.conductor"] .monaco-list-row').evaluateAll((rs) => rs.map((r) => r.getAttribute('aria-label') || r.textContent || ''));

  await check('Conductor view shows the plan and its steps', async () => {
    await runCommand('Conductor: Show plans view');
    const rows = await waitFor('plan and step rows', async () => {
      const r = await viewRows();
      return r.some((x) => x.startsWith('Plan ')) && r.some((x) => /^Step .*, (pending|in progress|waiting for approval|completed|failed)$/.test(x)) ? r : undefined;
    }, 30_000, 500).catch(async (e) => {
      await shot('conductor-view.png');
      throw new Error(`${e.message}; rows: ${(await viewRows()).join(' / ') || '(none)'}`);
    });
    await shot('conductor-view.png');
    return rows.join(' / ');
  });

  let approvals = 0;
  await check('view updates live as the reference agent completes the steps', async () => {
    if (!built) throw new Error('no build running');
    const help = spawnSync(CONDUCTOR, ['agent', '--help'], { encoding: 'utf8', env });
    if (help.status !== 0) throw new Error(`\`conductor agent\` is not available: ${(help.stderr || help.stdout).trim().split('\n').pop()}`);
    const agentCommand = process.env.E2E_AGENT_COMMAND ?? `${process.execPath} ${join(HERE, 'fixtures', 'agent-step.mjs')}`;
    const agentLog = join(ARTIFACTS, 'agent.log');
    writeFileSync(agentLog, '');
    agent = spawn(CONDUCTOR, ['agent', '--command', agentCommand], { cwd: W, env: { ...env, E2E_GOAL: GOAL }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(agent);
    agent.stdout.on('data', (d) => appendFileSync(agentLog, d));
    agent.stderr.on('data', (d) => appendFileSync(agentLog, d));
    let firstCompleted;
    const rows = await waitFor('every step completed in the view', async () => {
      // A LOW-confidence step asks through window/showMessageRequest: a toast with Approve.
      const approve = page.locator('.notifications-toasts .notification-toast .monaco-button').filter({ hasText: /^Approve$/ }).first();
      if (await approve.isVisible().catch(() => false)) {
        const buttons = await page.locator('.notifications-toasts .notification-toast .monaco-button').allTextContents();
        if (!['Approve', 'Skip', 'Explain'].every((b) => buttons.includes(b))) throw new Error(`approval toast buttons: ${buttons.join(', ')}`);
        await page.locator('.notifications-toasts .notification-toast.notification-fade-in-done').first().waitFor({ timeout: 2000 }).catch(() => undefined);
        await shot('approval-request.png');
        await approve.click();
        approvals++;
      }
      const r = await viewRows();
      const steps = r.filter((x) => x.startsWith('Step '));
      if (!firstCompleted && steps.some((x) => /, completed$/.test(x))) {
        firstCompleted = r;
        await shot('conductor-view-step-completed.png');
      }
      return steps.length >= 2 && steps.every((x) => /, completed$/.test(x)) ? r : undefined;
    }, 60_000, 500).catch(async (e) => {
      await shot('conductor-view-after-agent.png');
      throw new Error(`${e.message}; rows: ${(await viewRows()).join(' / ')}`);
    });
    await sleep(300);
    await shot('conductor-view-after-agent.png');
    const status = (await page.locator('.statusbar-item').filter({ hasText: /Conductor/ }).first().textContent())?.trim();
    if (!/^Conductor 2\/2 ✓$/.test(status ?? '')) throw new Error(`status bar says "${status}", expected "Conductor 2/2 ✓"`);
    return `${rows.join(' / ')}; status bar "${status}"`;
  });

  await check('approval request (window/showMessageRequest) shows Approve / Skip / Explain and Approve lets the step run', async () => {
    if (approvals < 1) throw new Error('no approval toast appeared (policy approval_below 0.95 should make the 0.89 step wait)');
    return `${approvals} approval(s) clicked`;
  });

  await check('tree context menu "Explain step" opens the explanation as Markdown', async () => {
    const row = page.locator('[id="workbench.view.extension.conductor"] .monaco-list-row[aria-label^="Step Add greet()"]').first();
    await row.click({ button: 'right' });
    const item = page.locator('.context-view .action-item .action-label, .monaco-menu .action-label').filter({ hasText: /^Explain step$/ }).first();
    await item.waitFor({ timeout: 5000 }).catch(async (e) => {
      const items = await page.locator('.context-view .action-label, .monaco-menu .action-label').allTextContents();
      throw new Error(`${e.message}; menu: ${items.join(' / ')}`);
    });
    const menu = await page.locator('.context-view .action-label, .monaco-menu .action-label').allTextContents();
    for (const want of ['Explain step', 'Open task', 'Open result', 'Open provenance']) {
      if (!menu.some((m) => m.trim() === want)) throw new Error(`context menu lacks "${want}": ${menu.join(' / ')}`);
    }
    if (menu.some((m) => m.trim() === 'Approve step')) throw new Error('a completed step offers "Approve step"');
    await shot('view-context-menu.png');
    await item.click();
    const tab = page.locator('.tab[aria-label^="Conductor explain step_001"]').first();
    await tab.waitFor({ timeout: 15_000 });
    const text = await waitFor('explanation text', async () => {
      const t = ((await page.locator('.editor-instance .view-lines').first().textContent()) ?? '').replace(/\s/g, ' ');
      return t.length > 20 ? t : undefined;
    }, 10_000);
    if (!/step_001/.test(text)) throw new Error(`explanation does not mention step_001: ${text.slice(0, 200)}`);
    return `"${text.slice(0, 80)}…"`;
  });

  await check('"Conductor: Status" from the palette shows the plans as Markdown', async () => {
    await runCommand('Conductor: Status');
    await page.locator('.tab[aria-label^="Conductor status"]').first().waitFor({ timeout: 15_000 });
    const text = await waitFor('status text', async () => {
      const t = ((await page.locator('.editor-instance .view-lines').first().textContent()) ?? '').replace(/\s/g, ' ');
      return /Add greet\(\)/.test(t) && /2\/2 completed/.test(t) ? t : undefined;
    }, 10_000).catch(async (e) => {
      throw new Error(`${e.message}; editor: ${((await page.locator('.editor-instance .view-lines').first().textContent()) ?? '').slice(0, 300)}`);
    });
    await shot('status-document.png');
    return `"${text.slice(0, 80)}…"`;
  });

  await check('Build shows a progress notification whose Cancel stops the job', async () => {
    if (agent) {
      try {
        process.kill(-agent.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
    const goal2 = 'A second goal, cancelled while its step waits';
    await runCommand('Conductor: Build…');
    await page.locator(QI_INPUT).waitFor({ state: 'visible', timeout: 10_000 });
    await page.locator(QI_INPUT).fill(goal2);
    await page.keyboard.press('Enter');
    const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: /Conductor build: A second goal/ }).first();
    await toast.waitFor({ timeout: 20_000 }).catch(async (e) => {
      await shot('build-progress.png');
      throw new Error(`${e.message}; toasts: ${(await toasts()).join(' / ')}`);
    });
    // An agent that only does the planning task: the plan's step then waits (approval / hand-off).
    const agentLog = join(ARTIFACTS, 'agent-once.log');
    const once = spawn(CONDUCTOR, ['agent', '--once', '--command', `${process.execPath} ${join(HERE, 'fixtures', 'agent-step.mjs')}`], { cwd: W, env: { ...env, E2E_GOAL: goal2 }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(once);
    once.stdout.on('data', (d) => appendFileSync(agentLog, d));
    once.stderr.on('data', (d) => appendFileSync(agentLog, d));
    await waitFor('the second plan planned', async () => {
      const r = await viewRows();
      const i = r.findIndex((x) => x.startsWith('Plan A second goal'));
      return i >= 0 && r.slice(i).some((x) => /^Step Add greet\(\)/.test(x)) ? r : undefined;
    }, 30_000, 300).catch(async (e) => {
      throw new Error(`${e.message}; rows: ${(await viewRows()).join(' / ')}`);
    });
    const cancel = toast.locator('.monaco-button').filter({ hasText: /^Cancel$/ }).first();
    await cancel.waitFor({ timeout: 5000 });
    await shot('build-progress.png');
    await cancel.click();
    const msg = await waitFor('"cancelled" from the server', async () => (await toasts()).find((t) => /Conductor build \S+ cancelled/.test(t)), 30_000, 300).catch(async (e) => {
      throw new Error(`${e.message}; toasts: ${(await toasts()).join(' / ')}`);
    });
    await toast.waitFor({ state: 'hidden', timeout: 10_000 });
    return `"${msg}"`;
  });

  await check('a crashed language server is restarted (back-off) and answers again', async () => {
    const before = lspPids();
    if (before.length !== 1) throw new Error(`expected one conductor lsp process under code-server, found ${before.length}`);
    process.kill(before[0], 'SIGKILL');
    const after = await waitFor('a new conductor lsp process', async () => {
      const now = lspPids().filter((p) => p !== before[0]);
      return now.length === 1 ? now : undefined;
    }, 20_000, 250);
    await waitFor('server running again', async () => {
      const label = await page.locator('.statusbar-item').filter({ hasText: /Conductor/ }).first().getAttribute('aria-label');
      return label && /server running/.test(label);
    }, 20_000, 250);
    const before2 = new Set(await toasts());
    await runCommand('Conductor: Validate workspace');
    const msg = await waitFor('validate after restart', async () => (await toasts()).find((t) => !before2.has(t) && /^Conductor: /.test(t)), 20_000, 300);
    return `pid ${before[0]} → ${after[0]}; "${msg}"`;
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
