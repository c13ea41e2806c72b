/**
 * The plans as the server reports them (`conductor/plans`), refreshed when the server says a
 * step changed. The extension keeps no projection of its own: it asks, and shows the answer.
 */
import * as vscode from 'vscode';
import { PlansView, ViewPlan, readPlansView } from './core/planView';
import { ServerManager } from './client';

export class PlanStore implements vscode.Disposable {
  view: PlansView = { plans: [], projects: [] };
  /** The plan the user most likely cares about: the one that changed or started last. */
  private currentPlanId: string | undefined;
  /** Progress token of the build/explore/resume the editor started, per plan. */
  readonly tokens = new Map<string, string>();
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.emitter.event;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private again = false;

  constructor(private readonly mgr: ServerManager) {}

  /** Asks the server now (coalesced: one request at a time, one more if asked meanwhile). */
  refresh(): Promise<void> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.again = false;
        const client = this.mgr.client;
        if (!client || this.mgr.state !== 'running') break;
        try {
          const cancel = new vscode.CancellationTokenSource();
          const timer = setTimeout(() => cancel.cancel(), 15_000);
          try {
            this.view = readPlansView(await client.sendRequest('conductor/plans', null, cancel.token));
          } finally {
            clearTimeout(timer);
            cancel.dispose();
          }
          this.emitter.fire();
        } catch (e) {
          this.mgr.output.debug(`conductor/plans failed: ${String(e)}`);
        }
      } while (this.again);
    })().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  refreshSoon(delayMs = 200): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), delayMs);
  }

  setCurrent(planId: string | undefined): void {
    if (planId) this.currentPlanId = planId;
  }

  current(): ViewPlan | undefined {
    const plans = this.view.plans;
    return plans.find((p) => p.plan_id === this.currentPlanId) ?? [...plans].reverse().find((p) => p.state === 'running') ?? plans[plans.length - 1];
  }

  findStep(stepId: string, planId?: string): { plan: ViewPlan; step: ViewPlan['forks'][number]['steps'][number] } | undefined {
    for (const plan of this.view.plans) {
      if (planId && plan.plan_id !== planId) continue;
      for (const fork of plan.forks) {
        const step = fork.steps.find((s) => s.step_id === stepId);
        if (step) return { plan, step };
      }
    }
    return undefined;
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.emitter.dispose();
  }
}
