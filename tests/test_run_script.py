"""`./scripts/run.sh` as a new user runs it, on ports that are not the defaults.

The script runs in a copy of this working tree (so its `.env`, `var/` and processes are its own)
with a copy of `.venv` made of links to the real one: the environment `scripts/bootstrap.sh`
built is reused, not rebuilt. It gets only PATH, HOME and the ports: web on `PORT`, the local
LLM server on `LLM_PORT`. The test waits for `/healthz`, asks `/chat/ask` a question, sends
SIGINT like Ctrl-C, and checks that nothing it started is still running and that `manage.py`
works afterwards with no extra environment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.llm import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STARTUP_TIMEOUT = 420.0  # a fresh SQLite database, the demo seed, the model servers
INDEX_TIMEOUT = 300.0
ANSWER_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
pytestmark = pytest.mark.timeout(
    STARTUP_TIMEOUT + INDEX_TIMEOUT + ANSWER_TIMEOUT + STOP_TIMEOUT + 120
)
BARE_ENV = {
    "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
}


def _require_bootstrapped() -> None:
    """The copy must find a finished environment, or bootstrap.sh would reinstall into it."""
    if not (VENV / "bin" / "python").exists():
        pytest.fail("no .venv: run ./scripts/bootstrap.sh first", pytrace=False)
    deps = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "requirements.lock").read_bytes()
    stamp = VENV / ".stamps" / f"deps-{hashlib.sha256(deps).hexdigest()[:16]}"
    if not stamp.exists():
        pytest.fail(
            "the Python packages in .venv are older than pyproject.toml/requirements.lock: "
            "run ./scripts/bootstrap.sh first",
            pytrace=False,
        )
    if not (ROOT / "frontend" / "dist" / "supportai-widget.js").exists():
        pytest.fail("the widget is not built: run ./scripts/bootstrap.sh first", pytrace=False)


def _copy_working_tree(target: Path) -> None:
    """Tracked and untracked (not ignored) files as they are now, the widget build, and a
    `.venv` of links to the real one with stamps of its own."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    shutil.copytree(ROOT / "frontend" / "dist", target / "frontend" / "dist")
    venv = target / ".venv"
    venv.mkdir()
    for entry in VENV.iterdir():
        if entry.name == ".stamps":
            shutil.copytree(entry, venv / ".stamps")
        else:
            (venv / entry.name).symlink_to(entry)
    # bootstrap.sh hashes the widget sources that git tracks: the copy tracks the same files.
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    present = [n for n in filter(None, tracked.split("\0")) if (target / n).is_file()]
    subprocess.run(["git", "add", "--", *present], cwd=target, check=True)


def _processes_in(folder: Path) -> list[str]:
    """Processes whose working directory is inside `folder` (every one the script starts)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cwd = str((proc / "cwd").readlink())
            if cwd == str(folder) or cwd.startswith(f"{folder}/"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{proc.name}: {command.strip()}")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _logs(repo: Path, output: Path) -> str:
    parts = [f"--- run.sh output ---\n{output.read_text(errors='replace')[-4000:]}"]
    for log in sorted((repo / "var" / "log").glob("*.log")):
        parts.append(f"--- {log.name} ---\n{log.read_text(errors='replace')[-2500:]}")
    return "\n".join(parts)


def _manage(repo: Path, *args: str) -> str:
    """`manage.py ARGS` in the copy with no environment beyond finding programs; its stdout."""
    result = subprocess.run(
        [".venv/bin/python", "manage.py", *args],
        cwd=repo,
        env=BARE_ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}"
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_leftovers(folder: Path) -> None:
    for line in _processes_in(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


def test_run_script_on_other_ports_answers_and_stops_on_ctrl_c(tmp_path):
    _require_bootstrapped()
    repo = tmp_path / "supportai"
    _copy_working_tree(repo)
    port, llm_port = free_port(), free_port()
    while llm_port == port:
        llm_port = free_port()
    assert {port, llm_port}.isdisjoint({8000, 8001})
    base = f"http://127.0.0.1:{port}"
    env = {**BARE_ENV, "PORT": str(port), "LLM_PORT": str(llm_port)}
    output = tmp_path / "run.out"
    with output.open("wb") as out:
        script = subprocess.Popen(
            ["./scripts/run.sh"],
            cwd=repo,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As from a terminal: SIGINT at its default. A suite started in the background
            # inherits SIGINT ignored, and bash cannot trap a signal ignored on entry.
            preexec_fn=_default_sigint,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        healthy = False
        while time.monotonic() < deadline and script.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                healthy = httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            if healthy:
                break
            time.sleep(1)
        assert healthy, f"no /healthz on PORT={port} (run.sh exit code {script.poll()})\n" + _logs(
            repo, output
        )

        # The LLM server took LLM_PORT, not the web server's PORT.
        deadline = time.monotonic() + 120
        models = None
        while time.monotonic() < deadline and models is None:
            with contextlib.suppress(httpx.HTTPError):
                models = httpx.get(f"http://127.0.0.1:{llm_port}/v1/models", timeout=2).json()
            if models is None:
                time.sleep(1)
        assert models and models["data"], "the LLM server is not on LLM_PORT\n" + _logs(
            repo, output
        )

        # The worker indexes the demo knowledge; manage.py, with nothing but the .env the script
        # wrote, reads the same database meanwhile.
        deadline = time.monotonic() + INDEX_TIMEOUT
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = json.loads(
                _manage(
                    repo,
                    "shell",
                    "-c",
                    "import json; from apps.knowledge.models import "
                    "Source; print(json.dumps(list(Source.objects.unscoped()"
                    ".values_list('status', flat=True))))",
                )
            )
            if statuses and set(statuses) == {"synced"}:
                break
            assert "failed" not in statuses, _logs(repo, output)
            time.sleep(3)
        assert statuses and set(statuses) == {"synced"}, (
            f"demo knowledge not indexed: {statuses}\n" + _logs(repo, output)
        )

        key = re.search(r"widget key: (\S+)", output.read_text())
        assert key, "seed_demo printed no widget key\n" + _logs(repo, output)
        response = httpx.post(
            f"{base}/chat/ask",
            json={"text": "How long does standard shipping take?", "key": key.group(1)},
            headers={"Origin": base},
            timeout=ANSWER_TIMEOUT,
        )
        assert response.status_code == 201, response.text + "\n" + _logs(repo, output)
        body = response.json()
        print("chat/ask answered:", json.dumps(body)[:2000])
        assert body["message"]["content"] == "How long does standard shipping take?", body
        assert body["answer"]["role"] == "assistant", body
        assert body["answer"]["content"].strip(), body
        cited = [c["title"] for c in body["answer"]["citations"]]
        assert body["answer"]["citations"], f"the answer cites nothing: {body}"
        assert any("Shipping" in title for title in cited), body

        ready = httpx.get(f"{base}/readyz", timeout=10).json()
        assert ready["components"]["llm"]["ok"] is True, ready
        assert script.poll() is None, "run.sh stopped by itself\n" + _logs(repo, output)

        script.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            script.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail("run.sh did not exit after SIGINT\n" + _logs(repo, output))
        deadline = time.monotonic() + 15
        while _processes_in(repo) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _processes_in(repo) == [], "still running after Ctrl-C"
        assert _port_is_free(port) and _port_is_free(llm_port)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
        _kill_leftovers(repo)

    # The .env the run left lets manage.py work with nothing else in the environment.
    dotenv = (repo / ".env").read_text()
    assert "DEBUG=true" in dotenv
    assert f"DATA_DIR='{repo / 'var'}'" in dotenv
    assert (repo / ".env").stat().st_mode & 0o077 == 0, ".env holds the secret key: owner only"
    _manage(repo, "check")
    # ... against the demo's own data: the seeded tenant is in the database DATA_DIR names.
    slugs = _manage(
        repo,
        "shell",
        "-c",
        "import json; from apps.tenants.models import Tenant; "
        "print(json.dumps(list(Tenant.objects.values_list('slug', flat=True))))",
    )
    assert json.loads(slugs) == ["northwind"]
