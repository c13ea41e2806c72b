/**
 * What to do next: when a task waits for an agent, the status bar, the build's progress and
 * ONE notification say which step, for how long, and the three ways to run it — copy a prompt
 * for any agent's chat (the `/conductor` workflow), use the MCP tools, or start the reference
 * agent in a terminal. Before a build in llm mode without an API key, it says so and offers
 * the two ways out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { API_KEY_SECRET, ServerManager } from './client';
import { Readiness, ViewPlan, Waiting, statusBarContent, waitingMessage } from './core/planView';
import { shellQuote, sibling } from './core/serverCommand';
import { PlanStore } from './plans';

const COPY = 'Copy prompt for your agent';
const MCP = 'Use the MCP tools';
const AGENT = 'Start the reference agent';

export class Guidance implements vscode.Disposable {
  private readonly status: vscode.StatusBarItem;
  private readonly notified = new Set<string>();
  private readonly ticker: NodeJS.Timeout;
  private readonly subs: vscode.Disposable[] = [];
  private agentTerminal: vscode.Terminal | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly mgr: ServerManager,
    private readonly store: PlanStore,
    private readonly onTick: () => void,
  ) {
    this.status = vscode.window.createStatusBarItem('conductor.status', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'Conductor';
    this.subs.push(
      this.status,
      store.onDidChange(() => this.update(true)),
      mgr.onDidChangeState(() => this.update(false)),
      vscode.window.onDidCloseTerminal((t) => {
        if (t === this.agentTerminal) this.agentTerminal = undefined;
      }),
    );
    this.ticker = setInterval(() => this.tick(), 1000);
    this.update(false);
  }

  private tick(): void {
    if (this.store.view.plans.some((p) => p.waiting)) {
      this.update(false);
      this.onTick();
    }
  }

  private update(notify: boolean): void {
    const now = Date.now();
    const plan = this.store.current();
    const c = statusBarContent(plan, this.mgr.state, now);
    this.status.text = c.text;
    this.status.tooltip = c.tooltip;
    this.status.command = this.mgr.state === 'missing' ? 'conductor.ui.restartServer' : plan?.waiting?.waiting_for === 'agent' ? 'conductor.ui.runWaitingStep' : 'conductor.ui.showView';
    this.status.accessibilityInformation = { label: `${c.text.replace(/\$\([^)]*\)\s*/g, '')}, server ${this.mgr.state}`, role: 'button' };
    this.status.show();
    for (const p of this.store.view.plans) {
      const token = this.store.tokens.get(p.plan_id);
      if (token) this.mgr.progress.feature?.setWaiting(token, p.waiting && p.state === 'running' ? waitingMessage(p.waiting, now) : undefined);
      if (notify && p.waiting?.waiting_for === 'agent' && p.state === 'running') {
        const key = `${p.plan_id}/${p.waiting.fork_id}/${p.waiting.step_id}`;
        if (!this.notified.has(key)) {
          this.notified.add(key);
          void this.notifyWaiting(p, p.waiting);
        }
      }
    }
  }

  private async notifyWaiting(plan: ViewPlan, w: Waiting): Promise<void> {
    const pick = await vscode.window.showInformationMessage(
      `Conductor: "${w.title ?? w.step_id}" (${w.step_id}) is waiting for an agent to claim it. Run it with your agent, the MCP tools, or the reference agent.`,
      COPY,
      MCP,
      AGENT,
    );
    await this.run(pick, plan, w);
  }

  /** "Conductor: Run the waiting step…": the same three choices, as a quick pick. */
  async pickWaiting(): Promise<void> {
    const plan = this.store.view.plans.find((p) => p.waiting?.waiting_for === 'agent' && p.state === 'running');
    if (!plan?.waiting) {
      void vscode.window.showInformationMessage('Conductor: no step is waiting for an agent.');
      return;
    }
    const pick = await vscode.window.showQuickPick([COPY, MCP, AGENT], { title: `Conductor: ${plan.waiting.step_id} waits for an agent`, placeHolder: 'How should it run?' });
    await this.run(pick, plan, plan.waiting);
  }

  private async run(pick: string | undefined, plan: ViewPlan, w: Waiting): Promise<void> {
    const root = this.rootFor(w.task);
    if (pick === COPY) await this.copyPrompt(root, w);
    else if (pick === MCP) await this.useMcp(root);
    else if (pick === AGENT) this.startAgent(root, plan.plan_id);
  }

  private rootFor(task: string | null): string | undefined {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const project = this.store.view.projects.map((p) => p.root).find((r) => task?.startsWith(r + path.sep));
    return project ?? folders[0];
  }

  async copyPrompt(root: string | undefined, w: Waiting): Promise<void> {
    const rel = root && w.task ? path.relative(root, w.task) : (w.task ?? `the pending ${w.step_id} task under .conductor/handoff/`);
    let workflow = '';
    try {
      if (root) workflow = fs.readFileSync(path.join(root, '.agents', 'workflows', 'conductor.md'), 'utf8').replace(/^---[\s\S]*?---\s*/, '');
    } catch {
      workflow = '';
    }
    const prompt = [
      `Run the /conductor workflow for the Conductor task waiting in ${rel} (${w.step_id}: ${w.title ?? ''}).`,
      workflow ||
        'Claim the task by moving it into the sibling in_progress/ folder, do exactly what it says in its `workspace`, touching only `allowed_files`, then write step_NNN.result.json (echoing the task\'s nonce) and step_NNN.explanation.md beside it. Conductor verifies the evidence.',
    ].join('\n\n');
    await vscode.env.clipboard.writeText(prompt);
    void vscode.window.showInformationMessage(`Conductor: the prompt for ${w.step_id} is on the clipboard — paste it into your agent's chat (in Antigravity: /conductor).`);
  }

  async useMcp(root: string | undefined): Promise<void> {
    const config = root ? path.join(root, '.vscode', 'mcp.json') : undefined;
    if (config && fs.existsSync(config)) {
      await vscode.window.showTextDocument(vscode.Uri.file(config), { preview: true });
    }
    void vscode.window.showInformationMessage(
      config && fs.existsSync(config)
        ? 'Conductor: the MCP server "conductor" is configured in .vscode/mcp.json. In agent mode, ask your agent to call next_task, do the step, then submit_result.'
        : 'Conductor: add the MCP server "conductor" (command: conductor mcp) to your agent; `conductor mcp --print-config` prints the snippet. Then ask your agent to call next_task.',
    );
  }

  startAgent(root: string | undefined, planId: string): void {
    const found = this.mgr.found;
    if (!found) {
      void vscode.window.showErrorMessage('Conductor: the language server is not running, so the reference agent cannot be started.');
      return;
    }
    const command = vscode.workspace.getConfiguration('conductor').get<string>('agent.command') || '';
    const argv = sibling(found, ['agent', '--plan', planId, ...(command ? ['--command', command] : [])]);
    if (this.agentTerminal) this.agentTerminal.dispose();
    this.agentTerminal = vscode.window.createTerminal({ name: 'Conductor agent', shellPath: argv[0], shellArgs: argv.slice(1), cwd: root, env: {} });
    this.agentTerminal.show(true);
    this.mgr.output.info(`started the reference agent: ${argv.map(shellQuote).join(' ')}`);
  }

  /**
   * Before a build or explore: llm mode without an API key would silently hand planning off.
   * Returns false when the user chose neither way out.
   */
  async ready(): Promise<boolean> {
    await this.store.refresh();
    const project: Readiness | undefined = this.store.view.projects[0];
    if (!project || project.mode !== 'llm' || project.api_key_set) return true;
    const pick = await vscode.window.showWarningMessage(
      `Conductor is in llm mode but no API key is set (${project.api_key_env}). Set the key, or hand the steps to an agent instead.`,
      'Set API key',
      'Use handoff mode instead',
    );
    if (pick === 'Set API key') {
      const key = await vscode.window.showInputBox({ title: 'Conductor: Set API key', prompt: `API key for the model (kept in VS Code's secret storage, given to the server as CONDUCTOR_API_KEY)`, password: true, ignoreFocusOut: true });
      if (!key?.trim()) return false;
      await this.context.secrets.store(API_KEY_SECRET, key.trim());
      await this.mgr.restart();
      return true;
    }
    if (pick === 'Use handoff mode instead') {
      await vscode.workspace.getConfiguration('conductor').update('mode', 'handoff', vscode.ConfigurationTarget.Workspace);
      await this.store.refresh();
      return true;
    }
    return false;
  }

  dispose(): void {
    clearInterval(this.ticker);
    for (const s of this.subs) s.dispose();
  }
}
