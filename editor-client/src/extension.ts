/**
 * Conductor for VS Code: starts `conductor lsp`, shows the server's plans in a view and in the
 * status bar, guides a waiting hand-off, and puts every command in the palette under
 * "Conductor". `activate` only wires the parts together: server lifecycle (client.ts), plan
 * state from the server (plans.ts), views (tree.ts, views.ts), guidance (guidance.ts) and
 * commands (commands.ts).
 */
import * as vscode from 'vscode';
import { ServerManager } from './client';
import { registerCommands } from './commands';
import { Guidance } from './guidance';
import { PlanStore } from './plans';
import { PlanTreeProvider } from './tree';
import { RenderedViews } from './views';

let manager: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('Conductor', { log: true });
  const mgr = new ServerManager(context, output);
  manager = mgr;
  const store = new PlanStore(mgr);
  const views = new RenderedViews();
  const tree = new PlanTreeProvider(store);
  const treeView = vscode.window.createTreeView('conductor.plans', { treeDataProvider: tree, showCollapseAll: true });
  const guidance = new Guidance(context, mgr, store, () => tree.tick());
  context.subscriptions.push(output, mgr, store, views, tree, treeView, guidance);

  // Live state: the server says a step changed; ask it for the plans again and re-render views.
  mgr.onNotification('conductor/stepChanged', (params) => {
    const planId = (params as { plan_id?: unknown } | undefined)?.plan_id;
    if (typeof planId === 'string') store.setCurrent(planId);
    store.refreshSoon();
  });
  store.onDidChange(() => {
    void views.refresh();
    const waiting = store.view.plans.filter((p) => p.display_state === 'waiting_for_approval').length;
    treeView.badge = waiting > 0 ? { value: waiting, tooltip: `${waiting} plan(s) waiting for approval` } : undefined;
  });
  mgr.onDidStart(() => void store.refresh());

  registerCommands({ context, mgr, store, views, guidance });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('conductor.serverCommand')) void mgr.restart();
    }),
  );
  void mgr.ensureStarted();
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
}
