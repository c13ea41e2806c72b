/**
 * Rendered, live documents: status, explanations and the effective policy open as Markdown
 * *previews*, re-rendered whenever the server reports a step change (`conductor/stepChanged`),
 * so they never show Markdown source and never go stale.
 *
 * Each view is a Markdown file in a private temporary folder (not the project): the preview
 * then resolves plain relative links, so a policy value's origin is a working link to its
 * file and line (`…/policy.yaml#L12`), which a virtual document could not offer (the preview
 * refuses `file:` links).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

export class RenderedViews implements vscode.Disposable {
  private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conductor-views-'));
  private readonly renderers = new Map<string, () => Promise<string>>();
  private readonly last = new Map<string, string>();

  /** A link from a view to `file` (absolute) at `line`, as the Markdown preview resolves it. */
  link(file: string, line: number | null): string {
    const rel = path.relative(this.dir, file).split(path.sep).map(encodeURIComponent).join('/');
    return `${rel}${line ? `#L${line}` : ''}`;
  }

  /** Renders `name` and opens it as a Markdown preview; `render` runs again on every refresh. */
  async show(name: string, render: () => Promise<string>): Promise<vscode.Uri> {
    const file = path.join(this.dir, `${name.replace(/[^\w .-]+/g, '_')}.md`);
    this.renderers.set(file, render);
    this.write(file, await render());
    const uri = vscode.Uri.file(file);
    // Opening the document first activates the Markdown extension (onLanguage:markdown);
    // a first `markdown.showPreview` before that activation shows nothing.
    await vscode.workspace.openTextDocument(uri);
    await vscode.commands.executeCommand('markdown.showPreview', uri);
    return uri;
  }

  private write(file: string, text: string): void {
    if (this.last.get(file) === text) return;
    this.last.set(file, text);
    // In place, not temp + rename: the preview closes itself when its file is replaced.
    fs.writeFileSync(file, text);
  }

  /** Re-renders every view (the preview follows its file). */
  async refresh(): Promise<void> {
    for (const [file, render] of this.renderers) {
      try {
        this.write(file, await render());
      } catch {
        // keep the last rendering
      }
    }
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
