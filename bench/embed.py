"""Dense embedding speed of the two backends (EMBEDDING_BACKEND=onnx|torch), side by side.

    .venv/bin/python bench/embed.py [--queries 200] [--repeat 3]

In one run, interleaved so a load change hits both: one-query latency (what a chat answer
waits for) and chunk throughput (what ingestion waits for, batches of
KNOWLEDGE_EMBED_BATCH_SIZE) on the knowledge fixture corpus, plus the smallest cosine between
the two backends' vectors (the ONNX export is fp32: vectors must stay interchangeable).
Exports the model into DATA_DIR/embeddings first if it is not there yet.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-that-is-long-enough-for-production")
os.environ.setdefault("DATA_DIR", str(REPO / "var" / "bench"))
CORPUS = REPO / "apps/knowledge/tests/fixtures/stackfaq_sample_corpus.jsonl"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    from apps.knowledge.chunking import Chunker
    from apps.knowledge.embeddings import DenseEmbedder
    from apps.knowledge.evaluation import load_corpus

    corpus = load_corpus(str(CORPUS))
    chunker = Chunker()
    texts = [
        c.embed_text for e in corpus for c in chunker.chunk_text(e.text, heading_path=[e.title])
    ]
    questions = [e.title for e in corpus]
    batch = settings.KNOWLEDGE_EMBED_BATCH_SIZE
    backends = {name: DenseEmbedder(backend=name).encoder for name in ("onnx", "torch")}
    for encoder in backends.values():
        encoder.encode(texts[:batch], batch_size=batch)  # load and warm up

    latency: dict[str, list[float]] = {name: [] for name in backends}
    for i in range(args.queries):
        for name, encoder in backends.items():
            started = time.perf_counter()
            encoder.encode([questions[i % len(questions)]], batch_size=1)
            latency[name].append((time.perf_counter() - started) * 1000)
    rate: dict[str, list[float]] = {name: [] for name in backends}
    vectors = {}
    for _ in range(args.repeat):
        for name, encoder in backends.items():
            started = time.perf_counter()
            vectors[name] = encoder.encode(texts, batch_size=batch)
            rate[name].append(len(texts) / (time.perf_counter() - started))
    cosine = float(np.min(np.sum(vectors["onnx"] * vectors["torch"], axis=1)))

    print(f"{len(questions)} questions, {len(texts)} chunks, batch {batch}, {os.cpu_count()} CPUs")
    for name in backends:
        print(
            f"{name:<6} query p50 {percentile(latency[name], 50):6.2f} ms  "
            f"p95 {percentile(latency[name], 95):6.2f} ms   "
            f"chunks/s median {sorted(rate[name])[len(rate[name]) // 2]:7.1f}"
        )
    onnx, torch = latency["onnx"], latency["torch"]
    print(
        f"torch/onnx: query p50 {percentile(torch, 50) / percentile(onnx, 50):.2f}x, "
        f"chunks/s onnx/torch {sorted(rate['onnx'])[1] / sorted(rate['torch'])[1]:.2f}x; "
        f"smallest cosine onnx vs torch {cosine:.6f}"
    )


if __name__ == "__main__":
    main()
