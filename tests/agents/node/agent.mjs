#!/usr/bin/env node
// A Conductor hand-off agent (contract 2.0) in Node.js, written from docs/handoff.md alone.
// It plans a fixed 3-step goal (a greeting module, its test, a command line) and does those steps.
// Usage: node agent.mjs PROJECT_ROOT [--idle-exit SECONDS] [--name NAME]
// Prints one JSON line per task it finished: {task_id, kind, attempt, verdict, reason_code}.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import canonicalize from 'canonicalize';

// "sha256:" + hex(SHA-256(JCS(task without its "checksum" key)))
export function taskChecksum(task) {
  const body = { ...task };
  delete body.checksum;
  return 'sha256:' + crypto.createHash('sha256').update(canonicalize(body), 'utf8').digest('hex');
}

const PLAN_STEPS = [
  { id: 'step_001', title: 'Add the greeting module', instruction: 'Create greet.js exporting greet(name).',
    allowed_files: ['greet.js'], depends_on: [], rationale: 'Everything else uses it.', estimated_confidence: 0.9 },
  { id: 'step_002', title: 'Test the greeting', instruction: 'Create test/greet.test.js with node:test.',
    allowed_files: ['test/greet.test.js'], depends_on: ['step_001'], rationale: 'Verification runs it.',
    estimated_confidence: 0.85 },
  { id: 'step_003', title: 'Add a command line', instruction: 'Create cli.js printing greet(argv[2]).',
    allowed_files: ['cli.js'], depends_on: ['step_001'], rationale: 'People run it.', estimated_confidence: 0.85 },
];
const FILES = {
  step_001: { 'greet.js': 'exports.greet = (name) => `Hello, ${name}!`;\n' },
  step_002: { 'test/greet.test.js': "const test = require('node:test');\nconst assert = require('node:assert');\n" +
    "const { greet } = require('../greet.js');\n\ntest('greets', () => assert.strictEqual(greet('Ada'), 'Hello, Ada!'));\n" },
  step_003: { 'cli.js': "const { greet } = require('./greet.js');\nconsole.log(greet(process.argv[2] || 'world'));\n" },
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function dirs(folder, prefix) {
  try {
    return fs.readdirSync(folder, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name.startsWith(prefix)).map((e) => path.join(folder, e.name));
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
}

// Step 1: every pending task, lowest step number first (names starting with "." are being written).
function pendingTasks(root) {
  const found = [];
  for (const plan of dirs(path.join(root, '.conductor', 'handoff'), 'plan_')) {
    for (const fork of dirs(plan, 'fork_')) {
      let names = [];
      try { names = fs.readdirSync(path.join(fork, 'pending')); } catch (e) { if (e.code !== 'ENOENT') throw e; }
      for (const name of names) {
        if (!name.startsWith('.') && name.endsWith('.task.json')) found.push({ fork, name });
      }
    }
  }
  return found.sort((a, b) => parseInt(a.name.slice(5), 10) - parseInt(b.name.slice(5), 10));
}

// Step 2: claim by one rename; ENOENT means another agent won.
function claim({ fork, name }) {
  const target = path.join(fork, 'in_progress', name);
  try {
    fs.renameSync(path.join(fork, 'pending', name), target);
    return target;
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

// Temporary file starting with ".", flushed, then renamed into place.
function writeAtomically(file, text) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o644);
  try { fs.writeSync(fd, text); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, file);
}

// Step 4: the work itself, only in the workspace, only on allowed files; verification run before finishing.
function work(task) {
  if (task.kind === 'plan') {
    const goal = /Goal: (.*)/.exec(task.instruction);
    return { files: [], summary: 'Planned three steps.',
      plan: { goal: goal ? goal[1].trim() : 'greeting', summary: 'Module, its test, a command line.', steps: PLAN_STEPS } };
  }
  const files = FILES[task.task_id];
  if (!files) throw new Error(`no script for ${task.task_id}`);
  for (const [rel, text] of Object.entries(files)) {
    if (!task.allowed_files.includes(rel)) throw new Error(`${rel} is not in allowed_files`);
    const target = path.join(task.workspace, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, text);
  }
  for (const check of task.verification) {
    const run = spawnSync('/bin/sh', ['-c', check.run], { cwd: task.workspace, encoding: 'utf8',
      timeout: check.timeout_seconds * 1000 });
    if (run.status !== 0) throw new Error(`verification \`${check.name}\` failed: ${run.stdout}${run.stderr}`);
  }
  return { files: Object.keys(files), summary: `Wrote ${Object.keys(files).join(', ')}.` };
}

// Step 7: the verdict of *this* attempt (same attempt and nonce), from the task's verdict_file.
async function verdictOf(task) {
  const deadline = Date.now() + (task.timeout_seconds + 120) * 1000;
  while (Date.now() < deadline) {
    try {
      const verdict = JSON.parse(fs.readFileSync(task.verdict_file, 'utf8'));
      if (verdict.attempt === task.attempt && verdict.nonce === task.nonce) return verdict;
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    await sleep(100);
  }
  throw new Error(`no verdict in ${task.verdict_file}`);
}

async function handle(claimed, executor) {
  const task = JSON.parse(fs.readFileSync(claimed, 'utf8'));
  const stem = path.join(path.dirname(claimed), task.task_id);
  const result = { contract_version: '2.0', task_id: task.task_id, nonce: task.nonce, status: 'completed',
    files_changed: [], summary: '', executor, started_at: new Date().toISOString() };
  try {
    if (taskChecksum(task) !== task.checksum) throw new Error('the task checksum does not match its content');
    const done = work(task);
    result.files_changed = done.files;
    result.summary = done.summary;
    if (done.plan) result.plan = done.plan;
  } catch (e) {
    result.status = 'failed';
    result.error = String(e.message || e);
  }
  result.finished_at = new Date().toISOString();
  writeAtomically(`${stem}.explanation.md`, `# ${task.task_id}: ${task.title}\n\n${result.summary || result.error}\n`);
  writeAtomically(`${stem}.result.json`, JSON.stringify(result, null, 2) + '\n');  // last
  const verdict = await verdictOf(task);
  console.log(JSON.stringify({ task_id: task.task_id, kind: task.kind, attempt: task.attempt,
    verdict: verdict.verdict, reason_code: verdict.reason_code, reason: verdict.reason }));
}

async function main(argv) {
  const root = path.resolve(argv[0] || '.');
  const option = (flag, fallback) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : fallback);
  const idleExit = Number(option('--idle-exit', '30')) * 1000;
  const executor = option('--name', `node-reference-agent@${os.hostname()}:${process.pid}`);
  let idleSince = Date.now();
  while (Date.now() - idleSince < idleExit) {
    let worked = false;
    for (const candidate of pendingTasks(root)) {
      const claimed = claim(candidate);
      if (claimed === null) continue;
      await handle(claimed, executor);
      worked = true;
      break;  // look again: lower-numbered tasks may have appeared
    }
    if (worked) idleSince = Date.now();
    else await sleep(200);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e) => { console.error(`agent: ${e.stack || e}`); process.exit(1); });
}
