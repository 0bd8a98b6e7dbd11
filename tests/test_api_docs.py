"""Run the walk-through in docs/api.md against a live server, in order.

Each fenced block preceded by `<!-- doctest: ... -->` runs:
- `status=NNN`: a bash block of curl commands; the HTTP status must be NNN;
- `export NAME=.field` (after a curl block): keep a field of the JSON answer for later blocks;
- `export NAME=stdout`: a shell command whose last line of output is kept as NAME;
- `python`: a Python block, executed; here it must verify SupportAI's webhook signatures.
Every curl command in the document must be in such a block, so the page cannot drift.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from apps.integrations.signing import signature_header

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
BLOCK = re.compile(
    r"(?:<!-- doctest: (?P<spec>[^>]*) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.S
)
STATUS_MARK = "__HTTP_STATUS__"
# Adds the status code to what each curl prints, without changing the documented commands.
CURL_WRAPPER = f'curl() {{ command curl -w "\\n{STATUS_MARK}%{{http_code}}" "$@"; }}\n'


def doc_blocks() -> list[tuple[str, str, str]]:
    return [(m["spec"] or "", m["lang"], m["code"]) for m in BLOCK.finditer(DOC.read_text())]


def test_every_curl_in_the_doc_is_checked():
    for spec, _lang, code in doc_blocks():
        if "curl " in code:
            assert "status=" in spec, f"curl block without a doctest status:\n{code}"


def _run_bash(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", CURL_WRAPPER + code],
        env=env,
        cwd=DOC.parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _exports(spec: str) -> list[tuple[str, str]]:
    return re.findall(r"export (\w+)=(\S+)", spec)


def test_walk_through_runs_against_a_live_server(live_server_process, tenant_a):
    from apps.workspace.selectors import inbox_default
    from apps.workspace.services import inbox_grant

    # The agent the walk-through names works the default inbox, as agents in a team do.
    inbox_grant(inbox=inbox_default(tenant=tenant_a.tenant), agent=tenant_a.agent)
    env = {
        **live_server_process.env,
        "SUPPORTAI_URL": live_server_process.url,
        # `python` in the doc is the project's interpreter.
        "PATH": f"{Path(sys.executable).parent}:{live_server_process.env.get('PATH', '')}",
    }
    ran = 0
    for spec, lang, code in doc_blocks():
        if not spec:
            continue
        ran += 1
        if lang == "python":
            _check_python_verifier(code)
            continue
        result = _run_bash(code, env)
        status_match = re.search(r"status=(\d{3})", spec)
        if status_match is None:  # a plain command whose output is exported
            assert result.returncode == 0, f"{code}\n{result.stderr}"
            for name, source in _exports(spec):
                assert source == "stdout", spec
                env[name] = result.stdout.strip().splitlines()[-1]
            continue
        body, _, status = result.stdout.rpartition(STATUS_MARK)
        assert status.strip() == status_match[1], (
            f"{code}\nexpected {status_match[1]}, got {status!r}: {body}\n{result.stderr}"
            f"\nserver log:\n{live_server_process.log()[-3000:]}"
        )
        for name, source in _exports(spec):
            env[name] = str(json.loads(body)[source.removeprefix(".")])
    assert ran >= 10


def _check_python_verifier(code: str) -> None:
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 — our own documentation
    verify = namespace["verify_supportai_webhook"]
    body = b'{"type":"handoff.requested"}'
    now = int(time.time())
    headers = {
        "X-SupportAI-Timestamp": str(now),
        "X-SupportAI-Signature": signature_header(["whsec_new", "whsec_old"], now, body),
    }
    assert verify("whsec_new", headers, body)
    assert verify("whsec_old", headers, body)
    assert not verify("whsec_other", headers, body)
    assert not verify("whsec_new", headers, body + b" ")
    stale = now - 301
    stale_headers = {
        "X-SupportAI-Timestamp": str(stale),
        "X-SupportAI-Signature": signature_header(["whsec_new"], stale, body),
    }
    assert not verify("whsec_new", stale_headers, body)
