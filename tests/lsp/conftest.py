"""A real ``conductor lsp`` process per test, driven by pytest-lsp with a real client's capabilities.

``client`` is parametrized over the recorded capabilities of VS Code, Neovim and Emacs; the
server runs ``[sys.executable, "-m", "conductor", "lsp"]`` on ``project``: a copy of a project
the real engine built (``mixed_project``: a plan with a failed, a rejected, a LOW-waiting and
a handed-off step, and a second, completed plan with the same step ids). Nothing under
``.conductor/`` was written by a test.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp.helpers import wait_for
from tests.support.fixtures import Built

REPO = Path(__file__).resolve().parents[2]
CLIENTS = ["visual_studio_code", "neovim", "emacs"]
SERVER = [sys.executable, "-m", "conductor", "lsp"]


@pytest.fixture
def built(mixed_project: Built, tmp_path: Path) -> Built:
    """A copy of the session's engine-built project (two plans), for this test alone."""
    return mixed_project.copy(tmp_path / "proj")


@pytest.fixture
def project(built: Built) -> Path:
    return built.root


def server_env(tmp_path: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "CONDUCTOR_", "OPENAI_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


class Recorder:
    """What the server asked of the client beyond pytest-lsp's defaults."""

    def __init__(self) -> None:
        self.registrations: list[Any] = []
        self.step_changes: list[dict[str, Any]] = []
        self.message_requests: list[lsp.ShowMessageRequestParams] = []
        self.answers: list[str | None] = []
        self.lens_refreshes = 0
        self.gate: asyncio.Event | None = None  # when set up, prompts are answered only once it is set


def attach(client: LanguageClient, rec: Recorder) -> None:
    @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(params: lsp.RegistrationParams) -> None:
        rec.registrations.extend(params.registrations)

    @client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
    async def message_request(params: lsp.ShowMessageRequestParams) -> lsp.MessageActionItem | None:
        rec.message_requests.append(params)
        if rec.gate is not None:
            await rec.gate.wait()
        answer = rec.answers.pop(0) if rec.answers else None
        return lsp.MessageActionItem(title=answer) if answer else None

    @client.feature(lsp.WORKSPACE_CODE_LENS_REFRESH)
    def lens_refresh(params: Any) -> None:
        rec.lens_refreshes += 1

    @client.feature("conductor/stepChanged")
    def step_changed(params: Any) -> None:
        rec.step_changes.append(_plain(params))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "_fields"):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dict__") and not isinstance(value, str | int | float | bool):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value


async def start_client(project: Path, caps_name: str, tmp_path: Path, rec: Recorder,
                       capabilities: lsp.ClientCapabilities | None = None,
                       init_options: Any = None, env: dict[str, str] | None = None,
                       configuration: dict[str, Any] | None = None) -> LanguageClient:
    config = ClientServerConfig(server_command=SERVER, server_env=env or server_env(tmp_path))
    client = await config.start()
    assert isinstance(client, LanguageClient)
    attach(client, rec)
    if configuration is not None:
        client.set_configuration(configuration)
    caps = capabilities or client_capabilities(caps_name)
    client.init_result = await client.initialize_session(lsp.InitializeParams(  # type: ignore[attr-defined]
        capabilities=caps, root_uri=project.as_uri(), initialization_options=init_options,
        workspace_folders=[lsp.WorkspaceFolder(uri=project.as_uri(), name="proj")]))
    watched = caps.workspace.did_change_watched_files if caps.workspace else None
    if watched is not None and watched.dynamic_registration:
        await wait_for(lambda: rec.registrations, what="client/registerCapability for watched files")
    await wait_for(lambda: any("file watching" in m.message for m in client.log_messages), what="ready")
    return client


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture(params=CLIENTS)
async def client(request: pytest.FixtureRequest, project: Path, tmp_path: Path,
                 recorder: Recorder) -> AsyncIterator[LanguageClient]:
    lc = await start_client(project, request.param, tmp_path, recorder)
    lc.caps_name = request.param  # type: ignore[attr-defined]
    yield lc
    await lc.shutdown_session()
    await lc.stop()
