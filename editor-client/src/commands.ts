/** The palette's `Conductor: …` commands: ask for arguments, run the server command, show the result. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { API_KEY_SECRET, ServerManager, openDocs } from './client';
import { policyMarkdown, statusMarkdown } from './core/planView';
import { firstLine, resultMarkdown, summarizeValidation } from './core/results';
import { Guidance } from './guidance';
import { PlanStore } from './plans';
import { Node } from './tree';
import { RenderedViews } from './views';

interface Deps {
  context: vscode.ExtensionContext;
  mgr: ServerManager;
  store: PlanStore;
  views: RenderedViews;
  guidance: Guidance;
}

export function registerCommands({ context, mgr, store, views, guidance }: Deps): void {
  const output = mgr.output;

  /** Runs a server command; `ok: false` when the server is missing or the command failed. */
  async function run(command: string, arg: Record<string, unknown>): Promise<{ ok: boolean; result?: unknown }> {
    const client = await mgr.ensureStarted();
    if (!client) return { ok: false };
    if (!mgr.serverCommands().includes(command)) {
      void vscode.window.showErrorMessage(`Conductor: this language server does not offer "${command}". Update conductor-runtime.`);
      return { ok: false };
    }
    try {
      output.debug(`${command} ${JSON.stringify(arg)}`);
      return { ok: true, result: await vscode.commands.executeCommand(command, arg) };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      output.error(`${command} failed: ${message}`);
      const { first } = firstLine(message);
      void vscode.window.showErrorMessage(`Conductor: ${first}`, 'Show problems', 'Show output').then(async (pick) => {
        if (pick === 'Show problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
        if (pick === 'Show output') output.show(true);
      });
      return { ok: false };
    }
  }

  const root = (): vscode.Uri | undefined => vscode.workspace.workspaceFolders?.[0]?.uri;
  const policyLink = (file: string, line: number | null): string => {
    const base = store.view.projects[0]?.root ?? root()?.fsPath ?? '';
    return views.link(path.isAbsolute(file) ? file : path.join(base, file), line);
  };

  async function pickStep(node: unknown, prefer?: (state: string) => boolean, placeHolder = 'Step'): Promise<{ step_id: string; plan_id?: string } | undefined> {
    const n = node as Node | undefined;
    if (n && n.kind === 'step') return { step_id: n.step.step_id, plan_id: n.plan.plan_id };
    await store.refresh();
    const steps = store.view.plans.flatMap((plan) => plan.forks.flatMap((fork) => fork.steps.map((step) => ({ plan, fork, step }))));
    if (steps.length === 0) {
      const id = await vscode.window.showInputBox({ title: 'Conductor', prompt: `${placeHolder}: step id`, placeHolder: 'step_001', ignoreFocusOut: true });
      return id ? { step_id: id.trim() } : undefined;
    }
    const ordered = prefer ? [...steps.filter((e) => prefer(e.step.state)), ...steps.filter((e) => !prefer(e.step.state))] : steps;
    const pick = await vscode.window.showQuickPick(
      ordered.map((e) => ({ label: e.step.title || e.step.step_id, description: `${e.step.step_id} · ${e.step.state}`, detail: `${e.plan.goal} — fork ${e.fork.fork_id}`, entry: e })),
      { title: 'Conductor', placeHolder, matchOnDescription: true, matchOnDetail: true },
    );
    return pick ? { step_id: pick.entry.step.step_id, plan_id: pick.entry.plan.plan_id } : undefined;
  }

  async function pickPlan(placeHolder: string): Promise<{ plan_id?: string } | undefined> {
    await store.refresh();
    const plans = store.view.plans;
    if (plans.length === 0) return {};
    const items = [
      { label: 'Latest plan', description: 'let the server choose', plan_id: undefined as string | undefined },
      ...[...plans].reverse().map((p) => ({ label: p.goal, description: `${p.plan_id} · ${p.display_state.replace(/_/g, ' ')}`, plan_id: p.plan_id as string | undefined })),
    ];
    const pick = await vscode.window.showQuickPick(items, { title: 'Conductor', placeHolder });
    return pick ? (pick.plan_id ? { plan_id: pick.plan_id } : {}) : undefined;
  }

  async function askGoal(title: string): Promise<string | undefined> {
    const goal = await vscode.window.showInputBox({
      title: `Conductor: ${title}`,
      prompt: 'What should the agents achieve? (the goal of the plan)',
      placeHolder: 'e.g. Add input validation to the signup form',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() ? undefined : 'Enter a goal'),
    });
    return goal?.trim() || undefined;
  }

  /** explore/build/resume return at once ({plan_id, token}); progress, view and guidance follow. */
  async function longRunning(verb: string, command: string, arg: Record<string, unknown>): Promise<void> {
    if (verb !== 'resume' && !(await guidance.ready())) return;
    const { ok, result } = await run(command, arg);
    if (!ok) return;
    const r = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
    if (typeof r.plan_id === 'string') {
      store.setCurrent(r.plan_id);
      if (typeof r.token === 'string') store.tokens.set(r.plan_id, r.token);
    }
    await store.refresh();
    if (r.status === 'running') {
      await vscode.commands.executeCommand('workbench.view.extension.conductor');
      return;
    }
    const outcome = (r.outcome && typeof r.outcome === 'object' ? r.outcome : undefined) as Record<string, unknown> | undefined;
    if (outcome && outcome.ok === false && !outcome.cancelled) {
      const { first } = firstLine(typeof outcome.error === 'string' ? outcome.error : `${verb} failed`);
      void vscode.window.showErrorMessage(`Conductor: ${verb} failed: ${first}`, 'Show problems', 'Open policy').then(async (pick) => {
        if (pick === 'Show problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
        if (pick === 'Open policy') await vscode.commands.executeCommand('conductor.ui.openPolicy');
      });
    }
  }

  async function openStepPath(node: unknown, which: 'task' | 'result' | 'provenance' | 'any'): Promise<void> {
    const n = node as Node | undefined;
    let paths = n && n.kind === 'step' ? n.step.paths : undefined;
    if (!paths) {
      const picked = await pickStep(undefined, undefined, `Open the ${which} file of a step`);
      paths = picked ? store.findStep(picked.step_id, picked.plan_id)?.step.paths : undefined;
    }
    if (!paths) return;
    const file = which === 'any' ? (paths.result ?? paths.task) : paths[which];
    if (!file) {
      void vscode.window.showInformationMessage(`Conductor: this step has no ${which} file yet.`);
      return;
    }
    await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true });
  }

  const commands: [string, (...args: unknown[]) => unknown][] = [
    ['conductor.ui.init', async () => {
      const folder = root();
      const { ok } = await run('conductor.init', folder ? { path: folder.fsPath } : {});
      if (ok) void vscode.window.showInformationMessage('Conductor: project initialised.');
    }],
    ['conductor.ui.explore', async () => {
      const goal = await askGoal('Explore');
      if (!goal) return;
      const dflt = vscode.workspace.getConfiguration('conductor').get<number>('forks') ?? 3;
      const forksText = await vscode.window.showInputBox({ title: 'Conductor: Explore', prompt: 'How many forks (strategies) to explore?', value: String(dflt), validateInput: (v) => (/^\s*[1-9]\d*\s*$/.test(v) ? undefined : 'A whole number ≥ 1') });
      if (forksText !== undefined) await longRunning('explore', 'conductor.explore', { goal, forks: Number(forksText) });
    }],
    ['conductor.ui.build', async () => {
      const goal = await askGoal('Build');
      if (goal) await longRunning('build', 'conductor.build', { goal });
    }],
    ['conductor.ui.status', async () => {
      if (!(await mgr.ensureStarted())) return;
      // Rendered from what the store holds; the store's refresh re-renders it (views.refresh).
      await views.show('Conductor status', async () => statusMarkdown(store.view, Date.now()));
      void store.refresh();
    }],
    ['conductor.ui.policy', async () => {
      const { ok, result } = await run('conductor.policy', {});
      if (!ok) return;
      let first = true;
      await views.show('Conductor effective policy', async () => {
        const fresh = first ? result : (await run('conductor.policy', {})).result;
        first = false;
        return policyMarkdown(fresh, policyLink);
      });
    }],
    ['conductor.ui.openPolicy', async () => {
      const files = await vscode.workspace.findFiles('**/.conductor/policy.{yaml,yml}', '**/node_modules/**', 1);
      if (files[0]) await vscode.window.showTextDocument(files[0]);
    }],
    ['conductor.ui.explain', async (node) => {
      const step = await pickStep(node, undefined, 'Explain which step?');
      if (!step) return;
      const explain = async (): Promise<string> => resultMarkdown(`Explain ${step.step_id}`, (await run('conductor.explain', step)).result);
      const first = await run('conductor.explain', step);
      if (!first.ok) return;
      let initial: unknown = first.result;
      await views.show(`Conductor explain ${step.step_id}`, async () => {
        if (initial !== undefined) {
          const text = resultMarkdown(`Explain ${step.step_id}`, initial);
          initial = undefined;
          return text;
        }
        return explain();
      });
    }],
    ['conductor.ui.approve', async (node) => {
      const step = await pickStep(node, (s) => s === 'waiting_approval', 'Approve or reject which step?');
      if (!step) return;
      const decision = await vscode.window.showQuickPick(
        [
          { label: 'Approve', description: 'run this step', decision: 'approve' },
          { label: 'Reject', description: 'skip this step', decision: 'reject' },
        ],
        { title: `Conductor: ${step.step_id}`, placeHolder: 'Decision' },
      );
      if (!decision) return;
      const { ok } = await run('conductor.approve', { ...step, decision: decision.decision });
      if (ok) store.refreshSoon();
    }],
    ['conductor.ui.resume', async (node) => {
      const n = node as Node | undefined;
      const plan = n && n.kind === 'plan' ? { plan_id: n.plan.plan_id } : await pickPlan('Resume which plan?');
      if (plan) await longRunning('resume', 'conductor.resume', plan);
    }],
    ['conductor.ui.events', async (node) => {
      const n = node as Node | undefined;
      const plan = n && n.kind === 'plan' ? { plan_id: n.plan.plan_id } : await pickPlan('Events of which plan?');
      if (!plan) return;
      const { ok, result } = await run('conductor.events', plan);
      if (ok) await views.show('Conductor events', async () => resultMarkdown('Conductor events', result));
    }],
    ['conductor.ui.handoffMetrics', async () => {
      const { ok, result } = await run('conductor.handoffMetrics', {});
      if (ok) await views.show('Conductor handoff metrics', async () => resultMarkdown('Conductor handoff metrics', result));
    }],
    ['conductor.ui.verify', async () => {
      const { ok, result } = await run('conductor.verify', {});
      if (!ok) return;
      const s = summarizeValidation(result);
      const pick = await vscode.window.showInformationMessage(s.message.replace('problems found', 'provenance problems found'), 'Show details');
      if (pick === 'Show details') await views.show('Conductor verify provenance', async () => resultMarkdown('Conductor verify provenance', result));
    }],
    ['conductor.ui.validate', async (uri?: unknown) => {
      const arg: Record<string, unknown> = uri instanceof vscode.Uri ? { paths: [uri.fsPath] } : {};
      const { ok, result } = await run('conductor.validate', arg);
      if (!ok) return;
      const s = summarizeValidation(result);
      const show = s.errors + s.warnings > 0 ? 'Show problems' : undefined;
      const pick = await (s.errors > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage)(s.message, ...(show ? [show] : []), 'Show details');
      if (pick === 'Show problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
      if (pick === 'Show details') await views.show('Conductor validate', async () => resultMarkdown('Conductor validate', result));
    }],
    ['conductor.ui.cancel', async () => {
      const { ok, result } = await run('conductor.cancel', {});
      if (!ok) return;
      const list = (result as { cancelled?: unknown[] } | undefined)?.cancelled;
      const n = Array.isArray(list) ? list.length : 0;
      void vscode.window.showInformationMessage(n > 0 ? `Conductor: cancelling ${n} running job${n === 1 ? '' : 's'}.` : 'Conductor: nothing is running.');
    }],
    ['conductor.ui.runWaitingStep', () => guidance.pickWaiting()],
    ['conductor.ui.refresh', () => store.refresh()],
    ['conductor.ui.showView', () => vscode.commands.executeCommand('workbench.view.extension.conductor')],
    ['conductor.ui.openTask', (node) => openStepPath(node, 'task')],
    ['conductor.ui.openResult', (node) => openStepPath(node, 'result')],
    ['conductor.ui.openProvenance', (node) => openStepPath(node, 'provenance')],
    ['conductor.ui.openStepFile', (node) => openStepPath(node, 'any')],
    ['conductor.ui.setApiKey', async () => {
      const key = await vscode.window.showInputBox({ title: 'Conductor: Set API key', prompt: "API key for the model (kept in VS Code's secret storage, given to the server as CONDUCTOR_API_KEY)", password: true, ignoreFocusOut: true });
      if (key === undefined) return;
      if (key.trim()) await context.secrets.store(API_KEY_SECRET, key.trim());
      else await context.secrets.delete(API_KEY_SECRET);
      void vscode.window.showInformationMessage(`Conductor: API key ${key.trim() ? 'stored' : 'removed'}; restarting the language server.`);
      await mgr.restart();
    }],
    ['conductor.ui.clearApiKey', async () => {
      await context.secrets.delete(API_KEY_SECRET);
      void vscode.window.showInformationMessage('Conductor: API key removed; restarting the language server.');
      await mgr.restart();
    }],
    ['conductor.ui.restartServer', () => mgr.restart()],
    ['conductor.ui.installServer', () => mgr.installHere()],
    ['conductor.ui.chooseInterpreter', () => mgr.chooseInterpreter()],
    ['conductor.ui.setServerPath', () => mgr.setPath()],
    ['conductor.ui.showOutput', () => output.show(true)],
    ['conductor.ui.openDocs', () => openDocs()],
  ];
  for (const [id, fn] of commands) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await fn(...args);
        } catch (e) {
          const message = e instanceof Error ? e.message : String(e);
          output.error(`${id} failed: ${message}`);
          void vscode.window.showErrorMessage(`Conductor: ${firstLine(message).first}`, 'Show output').then((pick) => {
            if (pick) output.show(true);
          });
          return undefined;
        }
      }),
    );
  }
}
