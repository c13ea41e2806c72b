/**
 * Server lifecycle: finds `conductor lsp` (see core/serverCommand.ts for the order), starts,
 * restarts and stops it, and — when no Conductor is found — shows ONE notification whose
 * actions go exactly where they say: install into the interpreter we would use (pip in a
 * visible terminal), choose an interpreter, or set the path. The notification and the
 * "not found" state clear themselves once the server runs.
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { PythonExtension } from '@vscode/python-extension';
import {
  CloseAction,
  CloseHandlerResult,
  ErrorAction,
  ErrorHandlerResult,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  ServerOptions,
  ShowMessageNotification,
  State,
  TransportKind,
} from 'vscode-languageclient/node';
import { Backoff } from './core/backoff';
import { firstLine, mentionsPolicy } from './core/results';
import { DiscoveryInput, ServerCommand, installTarget, pathDirs, resolveServerCommand, serverEnvironment, shellQuote, splitCommandLine } from './core/serverCommand';
import { NotificationProgressFeature } from './progress';

export const API_KEY_SECRET = 'conductor.apiKey';
export const DEFAULT_DOCS_URL = 'https://github.com/conductor-runtime/conductor/blob/main/editor-client/README.md';

/** Files the language server owns (diagnostics, hover, completion). */
export const DOCUMENT_SELECTOR = [
  '**/.conductor/policy.yaml',
  '**/.conductor/policy.yml',
  '**/.conductor/config.yaml',
  '**/.conductor/config.yml',
  '**/.conductor/plans/**/*.json',
  '**/*.plan.json',
  '**/*.plan.yaml',
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

/** True when `python` can import conductor (conductor-runtime installed there). */
function hasConductor(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import conductor.lsp'], { timeout: 20_000 }, (err) => resolve(!err));
  });
}

let loginPath: Promise<string[]> | undefined;
/** The login shell's PATH (what a terminal has), read once; empty when there is no such shell. */
function loginShellPath(): Promise<string[]> {
  if (process.platform === 'win32') return Promise.resolve([]);
  loginPath ??= new Promise((resolve) => {
    const shell = process.env.SHELL || '/bin/sh';
    execFile(shell, ['-lc', 'printf "\\n__CONDUCTOR_PATH__%s\\n" "$PATH"'], { timeout: 5000, env: { ...process.env, TERM: 'dumb' } }, (err, stdout) => {
      const m = /__CONDUCTOR_PATH__(.*)/.exec(stdout ?? '');
      resolve(err || !m ? [] : pathDirs(m[1].trim(), process.platform));
    });
  });
  return loginPath;
}

async function pythonApi(): Promise<PythonExtension | undefined> {
  if (!vscode.extensions.getExtension('ms-python.python')) return undefined;
  try {
    return await PythonExtension.api();
  } catch {
    return undefined;
  }
}

export async function discoveryInput(): Promise<DiscoveryInput> {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  let interpreter: string | undefined;
  const api = await pythonApi();
  if (api) {
    try {
      const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(vscode.workspace.workspaceFolders?.[0]?.uri));
      interpreter = env?.executable.uri?.fsPath;
    } catch {
      interpreter = undefined;
    }
  }
  const dirs = [...pathDirs(process.env.PATH, process.platform), ...(await loginShellPath())];
  return {
    setting: vscode.workspace.getConfiguration('conductor').get<unknown>('serverCommand'),
    workspaceFolders: folders,
    pythonExtensionInterpreter: interpreter,
    pathDirs: [...new Set(dirs)],
    home: os.homedir(),
    env: process.env,
    platform: process.platform,
  };
}

export class ServerManager implements vscode.Disposable {
  client: LanguageClient | undefined;
  found: ServerCommand | undefined;
  readonly progress = { feature: undefined as NotificationProgressFeature | undefined };
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
  /** The "not found" notification is on screen (cleared when the server starts). */
  private notFoundShown = false;
  private installing = false;
  private watcher: vscode.Disposable | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
  ) {}

  get state(): ServerState {
    return this._state;
  }

  private setState(s: ServerState): void {
    this._state = s;
    void vscode.commands.executeCommand('setContext', 'conductor.serverMissing', s === 'missing');
    void vscode.commands.executeCommand('setContext', 'conductor.serverRunning', s === 'running');
    if (s === 'running' && this.notFoundShown) {
      // The problem is solved: the "not found" toast must not linger on screen.
      this.notFoundShown = false;
      void vscode.commands.executeCommand('notifications.hideToasts');
    }
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
    const input = await discoveryInput();
    const found = await resolveServerCommand(input, { isExecutable, hasConductor });
    if (!found) {
      this.output.warn('Conductor language server not found (checked: conductor.serverCommand, the workspace .venv/venv, the Python extension interpreter, PATH and the login shell PATH, pipx/uv tool folders, python3 -m conductor)');
      this.setState('missing');
      void this.showNotFound(input);
      this.watchForInstall();
      return undefined;
    }
    this.found = found;
    this.output.info(`starting ${[found.command, ...found.args].join(' ')} (found via ${found.source})`);
    const config = vscode.workspace.getConfiguration('conductor');
    const apiKey = await this.context.secrets.get(API_KEY_SECRET);
    const env = serverEnvironment(process.env, apiKey, config.get<string>('model'));
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const serverOptions: ServerOptions = { command: found.command, args: found.args, transport: TransportKind.stdio, options: { env, cwd } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.output,
      synchronize: {
        fileEvents: vscode.workspace.createFileSystemWatcher('**/.conductor/**'),
        configurationSection: 'conductor',
      },
      errorHandler: {
        error: (_error, _message, count): ErrorHandlerResult => (count !== undefined && count <= 3 ? { action: ErrorAction.Continue } : { action: ErrorAction.Shutdown }),
        closed: async (): Promise<CloseHandlerResult> => {
          if (this.disposed) return { action: CloseAction.DoNotRestart, handled: true };
          const delay = this.backoff.next(Date.now());
          if (delay === undefined) {
            this.setState('stopped');
            void vscode.window.showErrorMessage('The Conductor language server crashed 5 times in 3 minutes and will not be restarted.', 'Show output', 'Restart').then((pick) => {
              if (pick === 'Show output') this.output.show();
              if (pick === 'Restart') void this.restart();
            });
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          this.output.warn(`server exited; restarting in ${delay} ms`);
          this.setState('starting');
          await new Promise((r) => setTimeout(r, delay));
          return this.disposed ? { action: CloseAction.DoNotRestart, handled: true } : { action: CloseAction.Restart, handled: true };
        },
      },
      markdown: { isTrusted: false, supportHtml: false },
    };
    const client = new LanguageClient('conductor', 'Conductor', serverOptions, clientOptions);
    const feature = new NotificationProgressFeature(client);
    this.progress.feature = feature;
    client.registerFeature(feature);
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        this.bind(client);
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
      this.output.error(`server failed to start: ${String(e)}`);
      this.setState('stopped');
      void vscode.window.showErrorMessage(`Conductor: the language server (${[found.command, ...found.args].join(' ')}) failed to start: ${firstLine(String(e)).first}`, 'Show output', 'Set path').then((pick) => {
        if (pick === 'Show output') this.output.show();
        if (pick === 'Set path') void this.setPath();
      });
      return undefined;
    }
  }

  /** Handlers that replace vscode-languageclient's defaults, bound on every (re)start. */
  private bind(client: LanguageClient): void {
    for (const [method, handler] of this.notificationHandlers) {
      client.onNotification(method, handler);
    }
    // Server messages: the full first line, and for errors the action that helps.
    client.onNotification(ShowMessageNotification.type, (params) => {
      const { first, rest } = firstLine(params.message);
      if (rest) this.output.info(params.message);
      if (params.type === MessageType.Error) {
        const actions = mentionsPolicy(params.message) ? ['Show problems', 'Open policy'] : ['Show problems', 'Show output'];
        void vscode.window.showErrorMessage(first, ...actions).then((pick) => this.act(pick));
      } else if (params.type === MessageType.Warning) {
        void vscode.window.showWarningMessage(first, 'Show problems').then((pick) => this.act(pick));
      } else {
        void vscode.window.showInformationMessage(first);
      }
    });
  }

  private async act(pick: string | undefined): Promise<void> {
    if (pick === 'Show problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
    if (pick === 'Show output') this.output.show(true);
    if (pick === 'Open policy') {
      const files = await vscode.workspace.findFiles('**/.conductor/policy.{yaml,yml}', '**/node_modules/**', 1);
      if (files[0]) await vscode.window.showTextDocument(files[0]);
    }
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) {
      try {
        await c.stop(3000);
      } catch {
        // already stopped
      }
      await c.dispose().catch(() => undefined);
    }
    if (this._state !== 'missing') this.setState('stopped');
  }

  async restart(): Promise<LanguageClient | undefined> {
    this.backoff.reset();
    await this.stop();
    return this.ensureStarted();
  }

  /** Command ids the server registered through executeCommandProvider. */
  serverCommands(): string[] {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  }

  private async showNotFound(input: DiscoveryInput): Promise<void> {
    if (this.notFoundShown) return;
    this.notFoundShown = true;
    const target = installTarget(input, isExecutable);
    const install = target ? `Install Conductor into ${shortPath(target)}` : undefined;
    const pick = await vscode.window.showErrorMessage(
      'Conductor is not installed: no language server in the conductor.serverCommand setting, the workspace .venv, the selected Python interpreter, PATH, or pipx/uv.',
      ...[install, 'Choose interpreter', 'Set path'].filter((x): x is string => !!x),
    );
    this.notFoundShown = false;
    if (pick === install && target) await this.install(target);
    else if (pick === 'Choose interpreter') await this.chooseInterpreter();
    else if (pick === 'Set path') await this.setPath();
  }

  /** "Install Conductor": into the interpreter discovery would use (workspace venv, selected, python3). */
  async installHere(): Promise<void> {
    const target = installTarget(await discoveryInput(), isExecutable);
    if (target) await this.install(target);
    else void vscode.window.showErrorMessage('Conductor: no Python interpreter found to install into.', 'Choose interpreter', 'Set path').then((pick) => {
      if (pick === 'Choose interpreter') void this.chooseInterpreter();
      if (pick === 'Set path') void this.setPath();
    });
  }

  /** pip install in a terminal the user sees; the server starts when it succeeds. */
  async install(python: string): Promise<void> {
    if (this.installing) return;
    this.installing = true;
    const spec = splitCommandLine(vscode.workspace.getConfiguration('conductor').get<string>('installSpec') || 'conductor-runtime');
    const argv = [python, '-m', 'pip', 'install', ...spec];
    const write = new vscode.EventEmitter<string>();
    const close = new vscode.EventEmitter<number | void>();
    const print = (text: string): void => write.fire(text.replace(/\r?\n/g, '\r\n'));
    const pty: vscode.Pseudoterminal = {
      onDidWrite: write.event,
      onDidClose: close.event,
      open: () => {
        print(`$ ${argv.map(shellQuote).join(' ')}\n`);
        const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
        child.stdout.on('data', (d: Buffer) => print(d.toString()));
        child.stderr.on('data', (d: Buffer) => print(d.toString()));
        child.on('error', (e) => print(`\n${e.message}\n`));
        child.on('close', (code) => {
          this.installing = false;
          if (code === 0) {
            print('\nConductor is installed; starting the language server.\n');
            this.output.info(`installed Conductor into ${python}`);
            if (this._state !== 'running') void this.ensureStarted();
          } else {
            print(`\npip exited with ${code}. Fix the error above, or choose another interpreter.\n`);
            void vscode.window.showErrorMessage(`Conductor: installing into ${shortPath(python)} failed (pip exited with ${code}).`, 'Choose interpreter', 'Set path').then((pick) => {
              if (pick === 'Choose interpreter') void this.chooseInterpreter();
              if (pick === 'Set path') void this.setPath();
            });
          }
        });
      },
      close: () => undefined,
    };
    const terminal = vscode.window.createTerminal({ name: 'Conductor: install', pty });
    terminal.show(true);
  }

  /** The Python extension's interpreter picker; without it, pick a python executable. */
  async chooseInterpreter(): Promise<void> {
    if (vscode.extensions.getExtension('ms-python.python')) {
      await vscode.commands.executeCommand('python.setInterpreter');
      await this.restart();
      return;
    }
    const picked = await vscode.window.showOpenDialog({ title: 'Conductor: choose the Python interpreter that has conductor-runtime', canSelectMany: false, openLabel: 'Use this interpreter' });
    if (!picked?.[0]) return;
    await this.saveServerCommand([picked[0].fsPath, '-m', 'conductor', 'lsp']);
  }

  /** Pick the `conductor` executable; saved in User settings (works locally and remotely). */
  async setPath(): Promise<void> {
    const picked = await vscode.window.showOpenDialog({ title: 'Conductor: choose the conductor executable', canSelectMany: false, openLabel: 'Use this conductor' });
    if (!picked?.[0]) return;
    await this.saveServerCommand([picked[0].fsPath, 'lsp']);
  }

  private async saveServerCommand(argv: string[]): Promise<void> {
    await vscode.workspace.getConfiguration('conductor').update('serverCommand', argv, vscode.ConfigurationTarget.Global);
    // onDidChangeConfiguration restarts the server
  }

  /** While nothing is found: look again when a venv appears or the selected interpreter changes. */
  private watchForInstall(): void {
    if (this.watcher) return;
    const again = (): void => {
      if (this._state === 'missing' && !this.starting) void this.ensureStarted();
    };
    const fsw = vscode.workspace.createFileSystemWatcher('**/{.venv,venv}/bin/{conductor,python}');
    const subs: vscode.Disposable[] = [fsw, fsw.onDidCreate(again)];
    void pythonApi().then((api) => {
      if (api) subs.push(api.environments.onDidChangeActiveEnvironmentPath(again));
    });
    this.watcher = vscode.Disposable.from(...subs);
    this.context.subscriptions.push(this.watcher);
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.stateEmitter.dispose();
    this.readyEmitter.dispose();
  }
}

function shortPath(p: string): string {
  const home = os.homedir();
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (folder && p.startsWith(folder + path.sep)) return p.slice(folder.length + 1);
  return home && p.startsWith(home + path.sep) ? `~${p.slice(home.length)}` : p;
}

export async function openDocs(): Promise<void> {
  const url = vscode.workspace.getConfiguration('conductor').get<string>('docsUrl') || DEFAULT_DOCS_URL;
  await vscode.env.openExternal(vscode.Uri.parse(url));
}
