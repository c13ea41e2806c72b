/** Finds, starts and restarts the Conductor language server (`conductor lsp`) over stdio. */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import {
  CloseAction,
  CloseHandlerResult,
  ErrorAction,
  ErrorHandlerResult,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';
import { Backoff } from './core/backoff';
import { NotificationProgressFeature } from './progress';
import { ServerCommand, findOnPath, pythonCandidates, resolveServerCommand, serverEnvironment } from './core/serverCommand';

export const API_KEY_SECRET = 'conductor.apiKey';
export const DEFAULT_DOCS_URL = 'https://github.com/conductor-runtime/conductor/blob/main/editor-client/README.md';

/** Files the language server owns (diagnostics, hover, completion). */
export const DOCUMENT_SELECTOR = [
  '**/.conductor/policy.yaml',
  '**/.conductor/policy.yml',
  '**/.conductor/config.yaml',
  '**/.conductor/config.yml',
  '**/.conductor/plans/**/plan.json',
  '**/*.plan.json',
  '**/*.plan.yaml',
  '**/.conductor/handoff/**/*.task.json',
  '**/*.task.json',
  '**/*.result.json',
  '**/*.provenance.json',
].map((pattern) => ({ scheme: 'file', pattern }));

export type ServerState = 'starting' | 'running' | 'stopped' | 'missing';

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** True when `python` has the conductor-runtime distribution installed. */
function hasConductor(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-c', "import importlib.metadata as m, conductor; m.version('conductor-runtime')"],
      { timeout: 15_000 },
      (err) => resolve(!err),
    );
  });
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: vscode.Uri): { path: string } | undefined;
  };
}

async function pythonExtensionInterpreter(log: vscode.OutputChannel): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!ext) {
    return undefined;
  }
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const env = api?.environments?.getActiveEnvironmentPath?.(folder);
    return env?.path || undefined;
  } catch (e) {
    log.appendLine(`[client] Python extension did not give an interpreter: ${String(e)}`);
    return undefined;
  }
}

export async function discoverServer(log: vscode.OutputChannel): Promise<ServerCommand | undefined> {
  const config = vscode.workspace.getConfiguration('conductor');
  const setting = config.get<unknown>('serverCommand');
  const which = (name: string): string | undefined => findOnPath(name, process.env, process.platform, isExecutable);
  const pyExt = await pythonExtensionInterpreter(log);
  const base = { setting, pythonExtensionInterpreter: pyExt, which };
  // Only probe interpreters when the cheaper routes did not already decide.
  let resolved = resolveServerCommand({ ...base, interpretersWithConductor: new Set() });
  if (resolved && resolved.source !== 'setting' && pyExt) {
    resolved = undefined; // the selected interpreter wins over PATH when it has conductor
  }
  if (!resolved) {
    const ok = new Set<string>();
    for (const py of pythonCandidates(base)) {
      if (await hasConductor(py)) {
        ok.add(py);
      }
    }
    resolved = resolveServerCommand({ ...base, interpretersWithConductor: ok });
  }
  return resolved;
}

export class ServerManager implements vscode.Disposable {
  client: LanguageClient | undefined;
  private _state: ServerState = 'stopped';
  private readonly stateEmitter = new vscode.EventEmitter<ServerState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private readonly readyEmitter = new vscode.EventEmitter<LanguageClient>();
  /** Fires after every (re)start once the server has initialized. */
  readonly onDidStart = this.readyEmitter.event;
  private readonly backoff = new Backoff();
  private disposed = false;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private notificationHandlers: [string, (params: unknown) => void][] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.OutputChannel,
  ) {}

  get state(): ServerState {
    return this._state;
  }

  private setState(s: ServerState): void {
    this._state = s;
    void vscode.commands.executeCommand('setContext', 'conductor.serverMissing', s === 'missing');
    void vscode.commands.executeCommand('setContext', 'conductor.serverRunning', s === 'running');
    this.stateEmitter.fire(s);
  }

  onNotification(method: string, handler: (params: unknown) => void): void {
    this.notificationHandlers.push([method, handler]);
    this.client?.onNotification(method, handler);
  }

  /** Starts the server if needed; resolves to the running client or undefined (not found / failed). */
  ensureStarted(): Promise<LanguageClient | undefined> {
    if (this.client && this._state === 'running') {
      return Promise.resolve(this.client);
    }
    if (!this.starting) {
      this.starting = this.start().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async start(): Promise<LanguageClient | undefined> {
    this.setState('starting');
    const found = await discoverServer(this.output);
    if (!found) {
      this.output.appendLine(`[client] Conductor language server not found (setting conductor.serverCommand, Python extension interpreter, "conductor" on PATH, python3 -m conductor). PATH=${process.env.PATH ?? ''}`);
      this.setState('missing');
      void this.showNotFound();
      return undefined;
    }
    this.output.appendLine(`[client] starting ${found.command} ${found.args.join(' ')} (from ${found.source})`);
    const config = vscode.workspace.getConfiguration('conductor');
    const apiKey = await this.context.secrets.get(API_KEY_SECRET);
    const env = serverEnvironment(process.env, apiKey, config.get<string>('model'));
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const serverOptions: ServerOptions = {
      command: found.command,
      args: found.args,
      transport: TransportKind.stdio,
      options: { env, cwd },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.output,
      synchronize: {
        fileEvents: vscode.workspace.createFileSystemWatcher('**/.conductor/**'),
        configurationSection: 'conductor',
      },
      errorHandler: {
        error: (_error, _message, count): ErrorHandlerResult =>
          count !== undefined && count <= 3 ? { action: ErrorAction.Continue } : { action: ErrorAction.Shutdown },
        closed: async (): Promise<CloseHandlerResult> => {
          if (this.disposed) {
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          const delay = this.backoff.next(Date.now());
          if (delay === undefined) {
            this.setState('stopped');
            void vscode.window
              .showErrorMessage('The Conductor language server crashed 5 times in 3 minutes and will not be restarted.', 'Show output', 'Restart')
              .then((pick) => {
                if (pick === 'Show output') this.output.show();
                if (pick === 'Restart') void this.restart();
              });
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          this.output.appendLine(`[client] server exited; restarting in ${delay} ms`);
          this.setState('starting');
          await new Promise((r) => setTimeout(r, delay));
          if (this.disposed) {
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          return { action: CloseAction.Restart, handled: true };
        },
      },
      markdown: { isTrusted: false, supportHtml: false },
    };
    const client = new LanguageClient('conductor', 'Conductor', serverOptions, clientOptions);
    client.registerFeature(new NotificationProgressFeature(client));
    for (const [method, handler] of this.notificationHandlers) {
      client.onNotification(method, handler);
    }
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        this.setState('running');
        this.readyEmitter.fire(client);
      } else if (e.newState === State.Stopped && this._state === 'running') {
        this.setState('stopped');
      }
    });
    this.client = client;
    try {
      await client.start();
      return client;
    } catch (e) {
      this.output.appendLine(`[client] server failed to start: ${String(e)}`);
      this.setState('stopped');
      void vscode.window.showErrorMessage(`Conductor: the language server (${found.command} ${found.args.join(' ')}) failed to start.`, 'Show output', 'Open docs').then((pick) => {
        if (pick === 'Show output') this.output.show();
        if (pick === 'Open docs') void openDocs();
      });
      return undefined;
    }
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) {
      try {
        await c.stop(5000);
      } catch {
        // already stopped
      }
      await c.dispose().catch(() => undefined);
    }
    this.setState('stopped');
  }

  async restart(): Promise<LanguageClient | undefined> {
    this.backoff.reset();
    await this.stop();
    return this.ensureStarted();
  }

  /** Capabilities: the command ids the server registered through executeCommandProvider. */
  serverCommands(): string[] {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  }

  private async showNotFound(): Promise<void> {
    const pick = await vscode.window.showErrorMessage(
      'Conductor could not find its language server. Install it into your Python environment (pip install conductor-runtime), ' +
        'select that interpreter in the Python extension, put `conductor` on PATH, or set "conductor.serverCommand".',
      'Open docs',
      'Open settings',
      'Retry',
    );
    if (pick === 'Open docs') {
      await openDocs();
    } else if (pick === 'Open settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'conductor.serverCommand');
    } else if (pick === 'Retry') {
      await this.restart();
    }
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.stateEmitter.dispose();
    this.readyEmitter.dispose();
  }
}

export async function openDocs(): Promise<void> {
  const url = vscode.workspace.getConfiguration('conductor').get<string>('docsUrl') || DEFAULT_DOCS_URL;
  await vscode.env.openExternal(vscode.Uri.parse(url));
}
