/**
 * Server-created work-done progress as a VS Code progress *notification* (with Cancel).
 *
 * vscode-languageclient 9 shows server-created progress (window/workDoneProgress/create) as a
 * silent window progress (a spinner in the status bar; its Cancel only in the notification
 * centre). Conductor's explore/build/resume are long and worth a visible notification, so this
 * feature, registered after the built-in ones, takes over the create request: begin/report/end
 * drive `window.withProgress({location: Notification})`, and Cancel sends
 * window/workDoneProgress/cancel to the server.
 *
 * While a plan waits (for an agent to claim a task, or for an approval), the waiting line
 * ("waiting for an agent to claim step_000 (1 m 20 s)") replaces the server's last message:
 * see `setWaiting`.
 */
import * as vscode from 'vscode';
import {
  BaseLanguageClient,
  ClientCapabilities,
  Disposable,
  FeatureState,
  ProgressToken,
  StaticFeature,
  WorkDoneProgress,
  WorkDoneProgressBegin,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
  WorkDoneProgressReport,
} from 'vscode-languageclient/node';

class NotificationProgress {
  private progress: vscode.Progress<{ message?: string; increment?: number }> | undefined;
  private resolve: (() => void) | undefined;
  private reported = 0;
  private finished = false;
  private serverMessage: string | undefined;
  private waiting: string | undefined;
  private readonly listener: Disposable;

  constructor(
    private readonly client: BaseLanguageClient,
    readonly token: ProgressToken,
    private readonly onDone: (p: NotificationProgress) => void,
  ) {
    this.listener = client.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === 'begin') this.begin(value);
      else if (value.kind === 'report') this.report(value);
      else if (value.kind === 'end') this.done();
    });
  }

  private begin(params: WorkDoneProgressBegin): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: params.title, cancellable: params.cancellable === true },
      (progress, cancellation) => {
        if (this.finished) return Promise.resolve();
        this.progress = progress;
        cancellation.onCancellationRequested(() => {
          void this.client.sendNotification(WorkDoneProgressCancelNotification.type, { token: this.token });
        });
        this.report(params);
        return new Promise<void>((r) => {
          this.resolve = r;
        });
      },
    );
  }

  private report(params: WorkDoneProgressBegin | WorkDoneProgressReport): void {
    if (!this.progress) return;
    let increment: number | undefined;
    if (typeof params.percentage === 'number') {
      increment = Math.max(0, params.percentage - this.reported);
      this.reported += increment;
    }
    if (params.message !== undefined) this.serverMessage = params.message;
    this.progress.report({ message: this.waiting ?? this.serverMessage, increment });
  }

  /** Shows `message` instead of the server's while the plan waits; undefined gives it back. */
  setWaiting(message: string | undefined): void {
    if (message === this.waiting) return;
    this.waiting = message;
    this.progress?.report({ message: message ?? this.serverMessage });
  }

  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.listener.dispose();
    this.resolve?.();
    this.onDone(this);
  }
}

export class NotificationProgressFeature implements StaticFeature {
  private readonly parts = new Set<NotificationProgress>();

  constructor(private readonly client: BaseLanguageClient) {}

  fillClientCapabilities(capabilities: ClientCapabilities): void {
    capabilities.window = capabilities.window ?? {};
    capabilities.window.workDoneProgress = true;
  }

  /** The waiting line of the progress notification for `token` (see NotificationProgress.setWaiting). */
  setWaiting(token: string, message: string | undefined): void {
    for (const part of this.parts) {
      if (String(part.token) === token) part.setWaiting(message);
    }
  }

  initialize(): void {
    // Registered after the built-in ProgressFeature, so this handler replaces its one.
    this.client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const part = new NotificationProgress(this.client, token, (p) => this.parts.delete(p));
      this.parts.add(part);
    });
  }

  getState(): FeatureState {
    return { kind: 'static' };
  }

  clear(): void {
    for (const part of [...this.parts]) part.done();
    this.parts.clear();
  }
}
