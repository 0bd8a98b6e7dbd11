"""Ingestion throughput: the pipeline's chunks/s against the embedding model's raw encode.

    DATA_DIR=/tmp/bench DATABASE_URL=... .venv/bin/python bench/ingest.py \
        [--corpus corpus.jsonl] [--limit N] [--repeat 3] [--json out.json]

Two pipeline scenarios on the same texts, in one run:

- `documents`: every corpus entry is a document of one source, through the pipeline's Indexer
  (parse -> chunk -> embed -> sparse-encode -> upsert -> database rows), as a sitemap or a
  multi-document sync does it;
- `service`: the whole corpus as one Markdown text source (one `## title` section per entry),
  through `source_create` + `source_sync`, as the admin or the API does it.

Each is compared with the raw encode of the backend the pipeline uses (EMBEDDING_BACKEND:
`SentenceTransformer.encode` for torch, the ONNX Runtime encoder's `encode` for onnx; batch
size KNOWLEDGE_EMBED_BATCH_SIZE, normalised, the same model object), so the ratio is the
pipeline's own overhead, on exactly the chunk texts that scenario embedded, measured
right before and right after it (the mean), after one uncounted warm-up run per scenario.
The ratio pipeline/raw is the share of the model's speed the pipeline keeps (goal 0.9).
It runs against the configured database and vector store (migrated; a scratch DATA_DIR gives
a clean embedded store) in a throw-away tenant that is removed afterwards, rows and points.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEFAULT_CORPUS = REPO / "apps/knowledge/tests/fixtures/stackfaq_sample_corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="JSONL: id, title, text")
    parser.add_argument("--limit", type=int, default=None, help="first N corpus entries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    os.environ.setdefault("LOG_LEVEL", "warning")
    import django

    django.setup()
    import torch
    from django.conf import settings

    from apps.knowledge import runtime
    from apps.knowledge.chunking import format_embed_text
    from apps.knowledge.evaluation import load_corpus
    from apps.knowledge.index_inputs import DocumentInput
    from apps.knowledge.index_lifecycle import active_index
    from apps.knowledge.models import Chunk, Source
    from apps.knowledge.pipeline import Indexer
    from apps.knowledge.services import source_create, source_delete
    from apps.knowledge.sync import source_sync
    from apps.tenants.services import tenant_create

    corpus = load_corpus(args.corpus)[: args.limit]
    embedder = runtime.get_embedder()
    model = embedder.document_encoder
    batch = settings.KNOWLEDGE_EMBED_BATCH_SIZE
    model.encode(["warm up"] * batch, batch_size=batch)

    def raw(texts: list[str]) -> float:
        started = time.perf_counter()
        model.encode(texts, batch_size=batch)  # unit vectors, as the pipeline stores them
        return len(texts) / (time.perf_counter() - started)

    # Time spent inside the model during a pipeline run: its share of the run is a second,
    # load-insensitive view of the overhead (both sides are measured at the same moment).
    embed_seconds = [0.0]
    original_embed = embedder.embed_documents

    def timed_embed(texts, **kwargs):
        started = time.perf_counter()
        try:
            return original_embed(texts, **kwargs)
        finally:
            embed_seconds[0] += time.perf_counter() - started

    embedder.embed_documents = timed_embed

    def chunk_texts(tenant) -> list[str]:
        return [
            format_embed_text(heading_path=h, text=t)
            for h, t in Chunk.objects.for_tenant(tenant).values_list("heading_path", "text")
        ]

    def documents_scenario(tenant) -> tuple[int, float]:
        source = Source.objects.create(tenant=tenant, kind="text", name="bench", text="-")
        started = time.perf_counter()
        indexer = Indexer(source=source, index=active_index())
        for entry in corpus:
            indexer.add(
                DocumentInput(
                    key=entry.id,
                    filename=f"{entry.id}.md",
                    data=entry.text.encode("utf-8"),
                    title=entry.title,
                )
            )
        stats = indexer.finish()
        return stats.chunks_embedded, time.perf_counter() - started

    def service_scenario(tenant) -> tuple[int, float]:
        text = "\n\n".join(f"## {e.title}\n\n{e.text}" for e in corpus)
        started = time.perf_counter()
        source = source_create(
            tenant=tenant, kind="text", name="Bench handbook", text=text, sync=False
        )
        stats = source_sync(source=source)
        return stats.chunks_embedded, time.perf_counter() - started

    results: dict[str, dict] = {}
    try:
        for name, scenario in (("documents", documents_scenario), ("service", service_scenario)):
            rows = []
            # One uncounted run per scenario: creates the index, warms the tokenizer and
            # stemmer caches, and yields the chunk texts the raw baseline encodes first.
            warm = tenant_create(name="bench", slug=f"bench-{uuid.uuid4().hex[:10]}")
            try:
                scenario(warm)
                texts = chunk_texts(warm)
            finally:
                for source in Source.objects.for_tenant(warm):
                    source_delete(source=source)
                warm.delete()
            for _ in range(args.repeat):
                tenant = tenant_create(name="bench", slug=f"bench-{uuid.uuid4().hex[:10]}")
                try:
                    # Raw speed right before and right after the pipeline run, on the same
                    # texts: a load change on a shared machine then hits both sides.
                    before = raw(texts)
                    embed_seconds[0] = 0.0
                    chunks, seconds = scenario(tenant)
                    texts = chunk_texts(tenant)
                    assert len(texts) == chunks, (len(texts), chunks)
                    after = raw(texts)
                    raw_rate = (before + after) / 2
                    pipeline_rate = chunks / seconds
                    rows.append(
                        {
                            "chunks": chunks,
                            "pipeline_chunks_per_s": round(pipeline_rate, 1),
                            "raw_chunks_per_s": round(raw_rate, 1),
                            "ratio": round(pipeline_rate / raw_rate, 3),
                            "model_share_of_run": round(embed_seconds[0] / seconds, 3),
                        }
                    )
                    print(f"{name}: {rows[-1]}", flush=True)
                finally:
                    for source in Source.objects.for_tenant(tenant):
                        source_delete(source=source)
                    tenant.delete()
            results[name] = {
                "runs": rows,
                "median_ratio": statistics.median(r["ratio"] for r in rows),
                "median_pipeline_chunks_per_s": statistics.median(
                    r["pipeline_chunks_per_s"] for r in rows
                ),
                "median_raw_chunks_per_s": statistics.median(r["raw_chunks_per_s"] for r in rows),
                "median_model_share_of_run": statistics.median(
                    r["model_share_of_run"] for r in rows
                ),
            }
    finally:
        runtime.reset_store()
    summary = {
        "corpus": args.corpus,
        "entries": len(corpus),
        "store": settings.QDRANT_URL or f"{settings.QDRANT_LOCAL_ENGINE} (embedded)",
        "embed_batch_size": batch,
        "embedding_backend": embedder.backend,
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    print(
        json.dumps(
            {"backend": embedder.backend, **{k: v["median_ratio"] for k, v in results.items()}}
        )
    )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
