/** The "Conductor" view: plans → forks → steps, backed by the pure PlanModel. */
import * as vscode from 'vscode';
import { Fork, Plan, PlanModel, Step, planDisplayState, planProgress } from './core/planModel';
import { STATE_LABELS, stepDescription } from './core/results';

export type Node =
  | { kind: 'plan'; plan: Plan }
  | { kind: 'fork'; plan: Plan; fork: Fork }
  | { kind: 'step'; plan: Plan; fork: Fork; step: Step };

const STATE_ICONS: Record<string, [string, string | undefined]> = {
  pending: ['circle-large-outline', undefined],
  in_progress: ['sync~spin', 'charts.blue'],
  waiting_approval: ['bell-dot', 'charts.yellow'],
  completed: ['pass-filled', 'testing.iconPassed'],
  failed: ['error', 'testing.iconFailed'],
};

export function stateIcon(state: string): vscode.ThemeIcon {
  const [id, color] = STATE_ICONS[state] ?? ['circle-large-outline', undefined];
  return new vscode.ThemeIcon(id, color ? new vscode.ThemeColor(color) : undefined);
}

export class PlanTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly sub: { dispose(): void };

  constructor(private readonly model: PlanModel) {
    this.sub = model.onDidChange(() => this.emitter.fire(undefined));
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      return this.model.getPlans().map((plan) => ({ kind: 'plan', plan }));
    }
    if (node.kind === 'plan') {
      return node.plan.forks.map((fork) => ({ kind: 'fork', plan: node.plan, fork }));
    }
    if (node.kind === 'fork') {
      return node.fork.steps.map((step) => ({ kind: 'step', plan: node.plan, fork: node.fork, step }));
    }
    return [];
  }

  getParent(node: Node): Node | undefined {
    if (node.kind === 'step') {
      return { kind: 'fork', plan: node.plan, fork: node.fork };
    }
    if (node.kind === 'fork') {
      return { kind: 'plan', plan: node.plan };
    }
    return undefined;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'plan') {
      const p = planProgress(node.plan);
      const item = new vscode.TreeItem(node.plan.goal, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `plan:${node.plan.plan_id}`;
      item.description = `${p.completed}/${p.total} ✓` + (p.failed ? ` ${p.failed} ⚠` : '');
      item.tooltip = `${node.plan.goal}\nplan ${node.plan.plan_id} — ${STATE_LABELS[node.plan.state] ?? node.plan.state}`;
      item.iconPath = stateIcon(planDisplayState(node.plan));
      item.contextValue = 'plan';
      item.accessibilityInformation = { label: `Plan ${node.plan.goal}, ${p.completed} of ${p.total} steps done${p.failed ? `, ${p.failed} failed` : ''}` };
      return item;
    }
    if (node.kind === 'fork') {
      const item = new vscode.TreeItem(`fork ${node.fork.fork_id}`, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `fork:${node.plan.plan_id}/${node.fork.fork_id}`;
      const done = node.fork.steps.filter((s) => s.state === 'completed').length;
      item.description = `${done}/${node.fork.steps.length}`;
      item.iconPath = new vscode.ThemeIcon('git-branch');
      item.contextValue = 'fork';
      item.accessibilityInformation = { label: `Fork ${node.fork.fork_id}, ${done} of ${node.fork.steps.length} steps done` };
      return item;
    }
    const s = node.step;
    const item = new vscode.TreeItem(s.title || s.step_id, vscode.TreeItemCollapsibleState.None);
    item.id = `step:${node.plan.plan_id}/${node.fork.fork_id}/${s.step_id}`;
    item.description = stepDescription(s.state, s.confidence);
    item.iconPath = stateIcon(s.state);
    const tip = new vscode.MarkdownString();
    tip.appendMarkdown(`**${s.title || s.step_id}**\n\n`);
    tip.appendMarkdown(`\`${s.step_id}\` — ${STATE_LABELS[s.state] ?? s.state}\n\n`);
    if (s.confidence) {
      tip.appendMarkdown(`confidence ${s.confidence.score.toFixed(2)} (${s.confidence.level})\n\n`);
    }
    if (s.reason) {
      tip.appendText(s.reason);
    }
    item.tooltip = tip;
    // contextValue: "step" plus flags the menus match with regular expressions.
    const flags = ['step', `state-${s.state}`];
    if (s.paths.task) flags.push('task');
    if (s.paths.result) flags.push('result');
    if (s.paths.provenance) flags.push('provenance');
    item.contextValue = flags.join(' ');
    item.accessibilityInformation = { label: `Step ${s.title || s.step_id}${s.confidence ? `, confidence ${s.confidence.level}` : ''}, ${STATE_LABELS[s.state] ?? s.state}` };
    const open = s.paths.result ?? s.paths.task;
    if (open) {
      item.command = { command: 'conductor.ui.openStepFile', title: 'Open', arguments: [node] };
    }
    return item;
  }
}
