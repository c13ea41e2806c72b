/**
 * Rendered, live documents: status, explanations and the effective policy open as Markdown
 * *previews* of read-only virtual documents, re-rendered whenever the server reports a step
 * change (`conductor/stepChanged`), so they never show Markdown source and never go stale.
 */
import * as vscode from 'vscode';

export const VIEW_SCHEME = 'conductor-view';

export class RenderedViews implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly contents = new Map<string, string>();
  private readonly renderers = new Map<string, () => Promise<string>>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }

  /** Renders `name` and opens it as a Markdown preview; `render` runs again on every refresh. */
  async show(name: string, render: () => Promise<string>): Promise<vscode.Uri> {
    const uri = vscode.Uri.from({ scheme: VIEW_SCHEME, path: `/${name}.md` });
    this.renderers.set(uri.toString(), render);
    this.contents.set(uri.toString(), await render());
    this.emitter.fire(uri);
    await vscode.commands.executeCommand('markdown.showPreview', uri);
    return uri;
  }

  /** Re-renders every view that is still open. */
  async refresh(): Promise<void> {
    const open = new Set(vscode.workspace.textDocuments.map((d) => d.uri.toString()));
    for (const [key, render] of this.renderers) {
      if (!open.has(key)) continue;
      try {
        const text = await render();
        if (text !== this.contents.get(key)) {
          this.contents.set(key, text);
          this.emitter.fire(vscode.Uri.parse(key));
        }
      } catch {
        // keep the last rendering
      }
    }
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
