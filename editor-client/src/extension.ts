/**
 * Conductor for VS Code: starts `conductor lsp`, shows plans in a view and in the status bar,
 * and puts every server command in the palette under "Conductor".
 */
import * as vscode from 'vscode';
import { ExecuteCommandRequest } from 'vscode-languageclient/node';
import { API_KEY_SECRET, ServerManager, openDocs } from './client';
import { PlanModel, StepChanged } from './core/planModel';
import { resultMarkdown, statusMarkdown, summarizeValidation } from './core/results';
import { statusBarContent } from './core/statusText';
import { Node, PlanTreeProvider } from './tree';

const RESULT_SCHEME = 'conductor-result';

/** Read-only Markdown documents for command results (no "save?" prompt on close). */
class ResultDocuments implements vscode.TextDocumentContentProvider {
  private readonly contents = new Map<string, string>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }

  async show(name: string, markdown: string): Promise<void> {
    const uri = vscode.Uri.from({ scheme: RESULT_SCHEME, path: `/${name}.md` });
    this.contents.set(uri.toString(), markdown);
    this.emitter.fire(uri);
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { preview: true, preserveFocus: false });
  }
}

let manager: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('Conductor');
  const model = new PlanModel();
  const tree = new PlanTreeProvider(model);
  const docs = new ResultDocuments();
  const mgr = new ServerManager(context, output);
  manager = mgr;

  const view = vscode.window.createTreeView('conductor.plans', { treeDataProvider: tree, showCollapseAll: true });
  const status = vscode.window.createStatusBarItem('conductor.status', vscode.StatusBarAlignment.Left, 50);
  status.name = 'Conductor';
  status.command = 'workbench.view.extension.conductor';
  const updateStatus = (): void => {
    const c = statusBarContent(model.currentPlan(), mgr.state);
    status.text = c.text;
    status.tooltip = c.tooltip;
    status.accessibilityInformation = { label: `${c.text}, server ${mgr.state}`, role: 'button' };
    const plan = model.currentPlan();
    view.badge = plan
      ? (() => {
          const waiting = plan.forks.flatMap((f) => f.steps).filter((s) => s.state === 'waiting_approval').length;
          return waiting > 0 ? { value: waiting, tooltip: `${waiting} step(s) waiting for approval` } : undefined;
        })()
      : undefined;
    status.show();
  };
  model.onDidChange(updateStatus);
  mgr.onDidChangeState(updateStatus);
  updateStatus();

  context.subscriptions.push(
    output,
    tree,
    view,
    status,
    mgr,
    vscode.workspace.registerTextDocumentContentProvider(RESULT_SCHEME, docs),
  );

  // ---- live plan state -------------------------------------------------------------------
  let refreshTimer: NodeJS.Timeout | undefined;
  const refreshSoon = (): void => {
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => void refreshPlans(false), 300);
  };
  mgr.onNotification('conductor/stepChanged', (params) => {
    if (model.applyStepChanged(params as StepChanged)) {
      refreshSoon(); // a plan we did not know: fetch its goal once
    }
  });
  mgr.onDidStart(() => void refreshPlans(false));

  /** Runs a server command; undefined when the server is missing or the command failed. */
  async function run(command: string, arg: Record<string, unknown>): Promise<{ ok: boolean; result?: unknown }> {
    const client = await mgr.ensureStarted();
    if (!client) {
      return { ok: false };
    }
    if (!mgr.serverCommands().includes(command)) {
      void vscode.window.showErrorMessage(`Conductor: this language server does not offer "${command}". Update conductor-runtime.`);
      return { ok: false };
    }
    try {
      output.appendLine(`[client] ${command} ${JSON.stringify(arg)}`);
      const result: unknown = await vscode.commands.executeCommand(command, arg);
      return { ok: true, result };
    } catch (e) {
      // vscode-languageclient has already shown the server's error; keep it in the log.
      output.appendLine(`[client] ${command} failed: ${e instanceof Error ? e.message : String(e)}`);
      return { ok: false };
    }
  }

  async function refreshPlans(show: boolean): Promise<void> {
    const client = show ? await mgr.ensureStarted() : mgr.client;
    if (!client || !mgr.serverCommands().includes('conductor.status')) {
      if (show) await run('conductor.status', {});
      return;
    }
    try {
      // Straight to the server: this also runs right after (re)start, possibly before
      // vscode-languageclient has bound the command ids.
      const result: unknown = await client.sendRequest(ExecuteCommandRequest.type, { command: 'conductor.status', arguments: [{}] });
      model.loadStatus(result);
      if (show) await docs.show('Conductor status', statusMarkdown(model.getPlans()));
    } catch (e) {
      output.appendLine(`[client] conductor.status failed: ${String(e)}`);
    }
  }

  // ---- pickers ---------------------------------------------------------------------------
  async function pickStep(node: unknown, prefer?: (state: string) => boolean, placeHolder = 'Step'): Promise<{ step_id: string; plan_id?: string } | undefined> {
    const n = node as Node | undefined;
    if (n && n.kind === 'step') {
      return { step_id: n.step.step_id, plan_id: n.plan.plan_id };
    }
    const steps = model.allSteps();
    if (steps.length === 0) {
      const id = await vscode.window.showInputBox({ title: 'Conductor', prompt: `${placeHolder}: step id`, placeHolder: 'step_001', ignoreFocusOut: true });
      return id ? { step_id: id.trim() } : undefined;
    }
    const ordered = prefer ? [...steps.filter((e) => prefer(e.step.state)), ...steps.filter((e) => !prefer(e.step.state))] : steps;
    const pick = await vscode.window.showQuickPick(
      ordered.map((e) => ({
        label: e.step.title || e.step.step_id,
        description: `${e.step.step_id} · ${e.step.state}${e.step.confidence ? ` · ${e.step.confidence.level}` : ''}`,
        detail: `${e.plan.goal} — fork ${e.fork.fork_id}`,
        entry: e,
      })),
      { title: 'Conductor', placeHolder, matchOnDescription: true, matchOnDetail: true },
    );
    return pick ? { step_id: pick.entry.step.step_id, plan_id: pick.entry.plan.plan_id } : undefined;
  }

  async function pickPlan(placeHolder: string): Promise<{ plan_id?: string } | undefined> {
    const plans = model.getPlans();
    if (plans.length === 0) {
      return {};
    }
    const items = [
      { label: 'Latest plan', description: 'let the server choose', plan_id: undefined as string | undefined },
      ...plans.map((p) => ({ label: p.goal, description: `${p.plan_id} · ${p.state}`, plan_id: p.plan_id as string | undefined })),
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

  function summary(verb: string, result: unknown): string {
    const r = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
    const bits: string[] = [];
    if (typeof r.plan_id === 'string') bits.push(`plan ${r.plan_id}`);
    if (typeof r.state === 'string') bits.push(r.state);
    if (typeof r.outcome === 'string') bits.push(r.outcome);
    if (typeof r.winner === 'string') bits.push(`winner ${r.winner}`);
    if (typeof r.message === 'string') bits.push(r.message);
    return `Conductor: ${verb} finished${bits.length ? ` — ${bits.join(', ')}` : ''}.`;
  }

  /**
   * explore/build/resume return at once ({plan_id, token, status: "running"}); the server then
   * reports work-done progress (a notification with Cancel, shown by vscode-languageclient),
   * sends conductor/stepChanged as steps move, and a message when it is done.
   */
  async function longRunning(verb: string, command: string, arg: Record<string, unknown>): Promise<void> {
    const { ok, result } = await run(command, arg);
    if (!ok) return;
    const r = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
    await refreshPlans(false);
    if (r.status === 'running') {
      await vscode.commands.executeCommand('workbench.view.extension.conductor');
      return;
    }
    const outcome = (r.outcome && typeof r.outcome === 'object' ? r.outcome : undefined) as Record<string, unknown> | undefined;
    if (outcome && outcome.ok === false) {
      if (!outcome.cancelled) {
        void vscode.window.showErrorMessage(`Conductor: ${verb} failed${typeof outcome.error === 'string' ? `: ${outcome.error}` : '.'}`, 'Show output').then((pick) => {
          if (pick) output.show(true);
        });
      }
      return;
    }
    const pick = await vscode.window.showInformationMessage(summary(verb, outcome?.result ?? result), 'Show plans', 'Show result');
    if (pick === 'Show plans') await vscode.commands.executeCommand('workbench.view.extension.conductor');
    if (pick === 'Show result') await docs.show(`Conductor ${verb}`, resultMarkdown(`Conductor ${verb}`, result));
  }

  async function openStepPath(node: unknown, which: 'task' | 'result' | 'provenance' | 'any'): Promise<void> {
    let entry: { paths: { task: string | null; result: string | null; provenance: string | null } } | undefined;
    const n = node as Node | undefined;
    if (n && n.kind === 'step') {
      entry = model.findStep(n.step.step_id, n.plan.plan_id)?.step ?? n.step;
    } else {
      const picked = await pickStep(undefined, undefined, `Open the ${which} file of a step`);
      entry = picked ? model.findStep(picked.step_id, picked.plan_id)?.step : undefined;
    }
    if (!entry) return;
    const path = which === 'any' ? (entry.paths.result ?? entry.paths.task) : entry.paths[which];
    if (!path) {
      void vscode.window.showInformationMessage(`Conductor: this step has no ${which} file yet.`);
      return;
    }
    await vscode.window.showTextDocument(vscode.Uri.file(path), { preview: true });
  }

  const wrappers: [string, (...args: unknown[]) => unknown][] = [
    [
      'conductor.ui.init',
      async () => {
        const folder = vscode.workspace.workspaceFolders?.[0];
        const { ok, result } = await run('conductor.init', folder ? { path: folder.uri.fsPath } : {});
        if (ok) void vscode.window.showInformationMessage(summary('init', result).replace(' finished', ': project initialised'));
      },
    ],
    [
      'conductor.ui.explore',
      async () => {
        const goal = await askGoal('Explore');
        if (!goal) return;
        const dflt = vscode.workspace.getConfiguration('conductor').get<number>('forks') ?? 3;
        const forksText = await vscode.window.showInputBox({
          title: 'Conductor: Explore',
          prompt: 'How many forks (strategies) to explore?',
          value: String(dflt),
          validateInput: (v) => (/^\s*[1-9]\d*\s*$/.test(v) ? undefined : 'A whole number ≥ 1'),
        });
        if (forksText === undefined) return;
        await longRunning('explore', 'conductor.explore', { goal, forks: Number(forksText) });
      },
    ],
    [
      'conductor.ui.build',
      async () => {
        const goal = await askGoal('Build');
        if (goal) await longRunning('build', 'conductor.build', { goal });
      },
    ],
    ['conductor.ui.status', () => refreshPlans(true)],
    [
      'conductor.ui.policy',
      async () => {
        const { ok, result } = await run('conductor.policy', {});
        if (ok) await docs.show('Conductor effective policy', resultMarkdown('Conductor effective policy', result));
      },
    ],
    [
      'conductor.ui.explain',
      async (node) => {
        const step = await pickStep(node, undefined, 'Explain which step?');
        if (!step) return;
        const { ok, result } = await run('conductor.explain', step);
        if (ok) await docs.show(`Conductor explain ${step.step_id}`, resultMarkdown(`Explain ${step.step_id}`, result));
      },
    ],
    [
      'conductor.ui.approve',
      async (node) => {
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
        if (ok) void vscode.window.showInformationMessage(`Conductor: ${step.step_id} ${decision.decision === 'approve' ? 'approved' : 'rejected'}.`);
      },
    ],
    [
      'conductor.ui.resume',
      async (node) => {
        const n = node as Node | undefined;
        const plan = n && n.kind === 'plan' ? { plan_id: n.plan.plan_id } : await pickPlan('Resume which plan?');
        if (plan) await longRunning('resume', 'conductor.resume', plan);
      },
    ],
    [
      'conductor.ui.events',
      async (node) => {
        const n = node as Node | undefined;
        const plan = n && n.kind === 'plan' ? { plan_id: n.plan.plan_id } : await pickPlan('Events of which plan?');
        if (!plan) return;
        const { ok, result } = await run('conductor.events', plan);
        if (ok) await docs.show('Conductor events', resultMarkdown('Conductor events', result));
      },
    ],
    [
      'conductor.ui.handoffMetrics',
      async () => {
        const { ok, result } = await run('conductor.handoffMetrics', {});
        if (ok) await docs.show('Conductor handoff metrics', resultMarkdown('Conductor handoff metrics', result));
      },
    ],
    [
      'conductor.ui.verify',
      async () => {
        const { ok, result } = await run('conductor.verify', {});
        if (!ok) return;
        const s = summarizeValidation(result);
        const pick = await vscode.window.showInformationMessage(s.message.replace('problems found', 'provenance problems found'), 'Show details');
        if (pick === 'Show details') await docs.show('Conductor verify provenance', resultMarkdown('Conductor verify provenance', result));
      },
    ],
    [
      'conductor.ui.validate',
      async (uri?: unknown) => {
        const arg: Record<string, unknown> = uri instanceof vscode.Uri ? { paths: [uri.fsPath] } : {};
        const { ok, result } = await run('conductor.validate', arg);
        if (!ok) return;
        const s = summarizeValidation(result);
        const show = s.errors + s.warnings > 0 ? 'Show problems' : undefined;
        const pick = await (s.errors > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage)(s.message, ...(show ? [show] : []), 'Show details');
        if (pick === 'Show problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
        if (pick === 'Show details') await docs.show('Conductor validate', resultMarkdown('Conductor validate', result));
      },
    ],
    [
      'conductor.ui.cancel',
      async () => {
        const { ok, result } = await run('conductor.cancel', {});
        if (!ok) return;
        const n = Array.isArray((result as { cancelled?: unknown[] } | undefined)?.cancelled) ? (result as { cancelled: unknown[] }).cancelled.length : 0;
        void vscode.window.showInformationMessage(n > 0 ? `Conductor: cancelling ${n} running job${n === 1 ? '' : 's'}.` : 'Conductor: nothing is running.');
      },
    ],
    ['conductor.ui.refresh', () => refreshPlans(false)],
    ['conductor.ui.showView', () => vscode.commands.executeCommand('workbench.view.extension.conductor')],
    ['conductor.ui.openTask', (node) => openStepPath(node, 'task')],
    ['conductor.ui.openResult', (node) => openStepPath(node, 'result')],
    ['conductor.ui.openProvenance', (node) => openStepPath(node, 'provenance')],
    ['conductor.ui.openStepFile', (node) => openStepPath(node, 'any')],
    [
      'conductor.ui.setApiKey',
      async () => {
        const key = await vscode.window.showInputBox({
          title: 'Conductor: Set API key',
          prompt: 'API key for the LLM endpoint (kept in VS Code secret storage, passed to the server as CONDUCTOR_API_KEY)',
          password: true,
          ignoreFocusOut: true,
        });
        if (key === undefined) return;
        if (key.trim()) {
          await context.secrets.store(API_KEY_SECRET, key.trim());
          void vscode.window.showInformationMessage('Conductor: API key stored; restarting the language server.');
        } else {
          await context.secrets.delete(API_KEY_SECRET);
          void vscode.window.showInformationMessage('Conductor: API key removed; restarting the language server.');
        }
        await mgr.restart();
      },
    ],
    [
      'conductor.ui.clearApiKey',
      async () => {
        await context.secrets.delete(API_KEY_SECRET);
        void vscode.window.showInformationMessage('Conductor: API key removed; restarting the language server.');
        await mgr.restart();
      },
    ],
    ['conductor.ui.restartServer', () => mgr.restart()],
    ['conductor.ui.showOutput', () => output.show(true)],
    ['conductor.ui.openDocs', () => openDocs()],
  ];
  for (const [id, fn] of wrappers) {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  }

  // The server reads settings through workspace/configuration; some need a new process.
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('conductor.serverCommand')) {
        void mgr.restart();
      }
    }),
  );

  void mgr.ensureStarted();
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
}
