/** The "Conductor" view: plans → forks → steps, exactly as the server reports them. */
import * as vscode from 'vscode';
import { ViewFork, ViewPlan, ViewStep, stepIconKey, stepStateLabel, waitedFor } from './core/planView';
import { PlanStore } from './plans';

export type Node =
  | { kind: 'plan'; plan: ViewPlan }
  | { kind: 'fork'; plan: ViewPlan; fork: ViewFork }
  | { kind: 'step'; plan: ViewPlan; fork: ViewFork; step: ViewStep };

const ICONS: Record<string, [string, string | undefined]> = {
  pending: ['circle-large-outline', undefined],
  in_progress: ['sync~spin', 'charts.blue'],
  running: ['sync~spin', 'charts.blue'],
  waiting_agent: ['person', 'charts.yellow'],
  waiting_approval: ['bell-dot', 'charts.yellow'],
  waiting_for_agent: ['person', 'charts.yellow'],
  waiting_for_approval: ['bell-dot', 'charts.yellow'],
  completed: ['pass-filled', 'testing.iconPassed'],
  done: ['pass-filled', 'testing.iconPassed'],
  skipped: ['debug-step-over', undefined],
  failed: ['error', 'testing.iconFailed'],
  halted: ['debug-pause', undefined],
};

function icon(key: string): vscode.ThemeIcon {
  const [id, color] = ICONS[key] ?? ICONS.pending;
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

export class PlanTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: vscode.Disposable;

  constructor(private readonly store: PlanStore) {
    this.sub = store.onDidChange(() => this.emitter.fire(undefined));
  }

  /** Re-renders labels that show elapsed time. */
  tick(): void {
    this.emitter.fire(undefined);
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }

  getChildren(node?: Node): Node[] {
    if (!node) return [...this.store.view.plans].reverse().map((plan) => ({ kind: 'plan', plan }));
    if (node.kind === 'plan') return node.plan.forks.map((fork) => ({ kind: 'fork', plan: node.plan, fork }));
    if (node.kind === 'fork') return node.fork.steps.map((step) => ({ kind: 'step', plan: node.plan, fork: node.fork, step }));
    return [];
  }

  getParent(node: Node): Node | undefined {
    if (node.kind === 'step') return { kind: 'fork', plan: node.plan, fork: node.fork };
    if (node.kind === 'fork') return { kind: 'plan', plan: node.plan };
    return undefined;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const now = Date.now();
    if (node.kind === 'plan') {
      const p = node.plan;
      const steps = p.forks.flatMap((f) => f.steps).filter((s) => s.kind !== 'plan');
      const done = steps.filter((s) => s.state === 'completed' || s.state === 'skipped').length;
      const state = p.display_state.replace(/_/g, ' ');
      const item = new vscode.TreeItem(p.goal, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `plan:${p.plan_id}`;
      item.description = `${state}${steps.length ? ` · ${done}/${steps.length}` : ''}`;
      item.tooltip = `${p.goal}\nplan ${p.plan_id} — ${state}${p.halted_reason ? `\n${p.halted_reason}` : ''}`;
      item.iconPath = icon(p.display_state);
      item.contextValue = 'plan';
      item.accessibilityInformation = { label: `Plan ${p.goal}, ${state}, ${done} of ${steps.length} steps done` };
      return item;
    }
    if (node.kind === 'fork') {
      const f = node.fork;
      const item = new vscode.TreeItem(`fork ${f.fork_id}${f.strategy ? ` (${f.strategy})` : ''}`, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `fork:${node.plan.plan_id}/${f.fork_id}`;
      item.iconPath = new vscode.ThemeIcon('git-branch');
      item.contextValue = 'fork';
      return item;
    }
    const s = node.step;
    const label = stepStateLabel(s);
    const waited = s.waiting_for ? waitedFor(s.since, now) : '';
    const item = new vscode.TreeItem(s.title || s.step_id, vscode.TreeItemCollapsibleState.None);
    item.id = `step:${node.plan.plan_id}/${node.fork.fork_id}/${s.step_id}`;
    item.description = [s.step_id, label + (waited ? ` ${waited}` : ''), s.confidence ? `${s.confidence.score.toFixed(2)} ${s.confidence.level}` : ''].filter(Boolean).join(' · ');
    item.iconPath = icon(stepIconKey(s));
    const tip = new vscode.MarkdownString();
    tip.appendText(`${s.title || s.step_id}\n\n${s.step_id} — ${label}${waited ? ` for ${waited}` : ''}\n`);
    if (s.confidence) tip.appendText(`\nconfidence ${s.confidence.score.toFixed(2)} (${s.confidence.level})\n`);
    if (s.reason) tip.appendText(`\n${s.reason}\n`);
    item.tooltip = tip;
    const flags = ['step', `state-${s.waiting_for === 'approval' ? 'waiting_approval' : s.state}`];
    if (s.waiting_for === 'agent') flags.push('waiting-agent');
    if (s.paths.task) flags.push('task');
    if (s.paths.result) flags.push('result');
    if (s.paths.provenance) flags.push('provenance');
    item.contextValue = flags.join(' ');
    item.accessibilityInformation = { label: `Step ${s.title || s.step_id}, ${label}` };
    if (s.paths.result ?? s.paths.task) {
      item.command = { command: 'conductor.ui.openStepFile', title: 'Open', arguments: [node] };
    }
    return item;
  }
}
