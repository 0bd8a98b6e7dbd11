"""The dense model run by ONNX Runtime: an fp32 export of the sentence-transformers model.

On this project's CPUs ONNX Runtime embeds a query several times faster than PyTorch (see
docs/retrieval.md#performance), and a process that only embeds never imports torch. The export
is a local compute step (no download): the sentence-transformers model, pooling and
normalisation included, is traced once with `torch.onnx.export`, its attention and layer-norm
subgraphs are fused by ONNX Runtime's transformer optimizer, and the result is checked against
PyTorch (cosine ≥ 0.9999 on queries and documents) before it is used. The file is cached under
`DATA_DIR/embeddings/<model>-<key>/`, keyed by the model's files, and written under a file lock,
so processes starting together export it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime
from filelock import FileLock
from tokenizers import Tokenizer

# Bump when the export changes, so existing caches are rebuilt.
EXPORT_FORMAT = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"
# Exports whose vectors differ from PyTorch's by more than this are refused (fp32 gives ~1e-7),
# so vectors in existing indexes stay valid whichever backend computed them.
MIN_COSINE = 0.9999
PROBE_TEXTS = (
    "How do I get my money back?",
    "refund",
    "Wie lange dauert der Versand in die Schweiz?",
    "## Returns\n\nYou can return any bike within 30 days of delivery for a full refund. "
    "Start a return from your order page; we email you a prepaid shipping label.",
    "word " * 400,  # longer than the model reads: truncation must match
)


def export_key(model_path: str | Path) -> str:
    """Identifies the model's files (names, sizes, modification times) and the export format."""
    root = Path(model_path).resolve()
    files = sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    blob = json.dumps([EXPORT_FORMAT, str(root), files]).encode()
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def export_dir(model_path: str | Path, cache_dir: str | Path) -> Path:
    name = Path(model_path).resolve()
    label = name.parent.name if name.name == "model" else name.name
    return Path(cache_dir) / f"{label}-{export_key(model_path)}"


def ensure_export(model_path: str | Path, cache_dir: str | Path) -> Path:
    """The directory with the model's ONNX export, exporting it first if it is not there yet."""
    target = export_dir(model_path, cache_dir)
    if (target / META_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / META_FILE).is_file():  # another process may have finished meanwhile
            with _scratch_dir(target.parent) as scratch:
                export(model_path, scratch)
                scratch.replace(target)
    return target


@contextlib.contextmanager
def _scratch_dir(parent: Path) -> Iterator[Path]:
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export(model_path: str | Path, out: Path) -> None:
    """Export the sentence-transformers model at `model_path` into `out` and verify it."""
    # Heavy optional library (PyTorch), imported only for this one-time step.
    from apps.knowledge import onnx_export

    onnx_export.export(model_path, out)


class OnnxEncoder:
    """Sentence embeddings from an export directory: tokenizer + one ONNX Runtime session."""

    def __init__(self, directory: str | Path, *, meta: dict | None = None) -> None:
        directory = Path(directory)
        self.meta = meta or json.loads((directory / META_FILE).read_text())
        self.dimension = int(self.meta["dimension"])
        self.max_seq_length = int(self.meta["max_seq_length"])
        self.input_names = list(self.meta["inputs"])
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # By default the intra-op threads spin for a while after each run, taking a core from
        # the event loop, the database client and (on small hosts) the LLM server. A query is
        # a single short run, so spinning buys nothing here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # InferenceSession.run is thread-safe: one session serves every thread of the process.
        self.session = onnxruntime.InferenceSession(
            str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """Unit vectors, ``(len(texts), dimension)`` float32, in the order of `texts`.

        Like sentence-transformers, batches are formed from texts of similar length (sorted),
        so short texts are not padded to a long neighbour's length.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            vectors[picked] = self._run([texts[i] for i in picked])
        return vectors

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self.input_names}
        (embeddings,) = self.session.run(["sentence_embedding"], feed)
        # Models without a Normalize module give raw vectors; this is a no-op for the others.
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        return embeddings / np.maximum(norms, 1e-12)
