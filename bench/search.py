"""Search latency: ``VectorStore.search`` against a raw engine call on the same data.

Builds N synthetic chunks spread over several tenants, indexes them in Qdrant Edge (and,
at the smallest size, qdrant-client local mode), then times hybrid search with the tenant +
access-group filter through the store and through the engine's own API.

Dense vectors are RANDOM unit vectors: latency does not depend on what they mean, and it
keeps the benchmark free of model inference. Sparse vectors are real SparseEncoder output
over synthetic text with a Zipf-like word distribution.

The reranking stage is timed on its own next to the engine call that feeds it: the store's
hybrid asked for ``--rerank-depth`` fused candidates with payloads, then ``rerank`` over them
with the query's words (the product's weights). ``--windows`` adds sentence-window vectors to
every payload (random too, packed as ingestion packs them with KNOWLEDGE_RERANK_WINDOWS).

The raw hybrid baseline is the engine's own one-call fused query (RRF over both prefetches,
payloads of the top hits). The store's hybrid is what the assistant runs: both retrievers in
one engine call, fused in Python (convex by default, RRF as the alternative setting), and the
payloads of the chosen hits. The machine's load average is printed with every table, because
on a shared machine it moves p95 more than any code change does.

    .venv/bin/python bench/search.py                  # 10k and 50k, < 3 minutes on 2 cores
    .venv/bin/python bench/search.py --sizes 2000 --queries 100
"""

from __future__ import annotations

import argparse
import gc
import itertools
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.knowledge.embeddings import SparseEncoder
from apps.knowledge.rerank import (
    WINDOWS_FIELD,
    RerankQuery,
    RerankWeights,
    pack_vectors,
    rerank,
    sentence_windows,
    split_query,
)
from apps.knowledge.vectorstore.base import (
    DENSE_VECTOR,
    RRF_K,
    SPARSE_VECTOR,
    ChunkPoint,
    SearchScope,
    chunk_payload,
    scope_filter,
)
from apps.knowledge.vectorstore.fusion import HybridFusion

DIM = 384
COLLECTION = "bench"
GROUPS = ["sales", "support", "hr", "eng"]
_SUPPORT_TEXT = (
    "account billing invoice refund payment card subscription plan upgrade downgrade cancel "
    "renew trial password reset login email verify two factor security api key token webhook "
    "integration export import csv report dashboard settings team member role permission admin "
    "order shipping delivery tracking return exchange warranty discount coupon tax receipt "
    "support ticket chat agent escalation priority outage status error timeout sync mobile app "
    "desktop browser notification language timezone currency region data privacy gdpr delete"
)
SUPPORT_WORDS = _SUPPORT_TEXT.split()
_GLUE_TEXT = "the a to of and for in on with your you is are can we our this that it be will"
GLUE = _GLUE_TEXT.split()


def make_vocab(rng: random.Random, size: int = 4000) -> list[str]:
    """Support words first (frequent), then pronounceable pseudo-words for the long tail."""
    syllables = ["ka", "lo", "mi", "ra", "ten", "vor", "sil", "pe", "dun", "ex", "qua", "zi"]
    vocab = list(SUPPORT_WORDS)
    while len(vocab) < size:
        vocab.append("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return vocab


def make_text(rng: random.Random, vocab: list[str], weights: list[float]) -> str:
    sentences = []
    for _ in range(rng.randint(4, 9)):
        words = rng.choices(vocab, cum_weights=weights, k=rng.randint(8, 22))
        for i in range(0, len(words), 3):
            words.insert(i, rng.choice(GLUE))
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def build_points(
    n: int, *, tenants: int, seed: int = 42, windows: bool = False
) -> tuple[list[ChunkPoint], list[str], list[float]]:
    rng = random.Random(seed)
    vocab = make_vocab(rng)
    # Zipf-ish; cumulative so random.choices need not re-sum 4000 weights per sentence.
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(len(vocab))))
    dense = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    encoder = SparseEncoder()
    # A pool of packed window vectors (random, like the dense ones): the payloads have the
    # real size without holding millions more floats.
    pool_rng = np.random.default_rng(seed + 1)
    pool = []
    for _ in range(256):
        rows = pool_rng.standard_normal((12, DIM)).astype(np.float32)
        pool.append(rows / np.linalg.norm(rows, axis=1, keepdims=True))
    points = []
    for i in range(n):
        text = make_text(rng, vocab, weights)
        extra = {}
        if windows:  # as KNOWLEDGE_RERANK_WINDOWS=true writes them
            extra[WINDOWS_FIELD] = pack_vectors(pool[i % len(pool)][: len(sentence_windows(text))])
        groups = None if rng.random() < 0.7 else [rng.choice(GROUPS)]
        points.append(
            ChunkPoint(
                id=str(uuid.UUID(int=rng.getrandbits(128))),
                dense=dense[i].tolist(),
                sparse=encoder.encode_document(text),
                payload=chunk_payload(
                    tenant_id=f"tenant-{i % tenants:03d}",
                    source_id=f"src-{i % 7}",
                    document_id=f"doc-{i // 8}",
                    chunk_id=f"chunk-{i}",
                    access_groups=groups,
                    text=text,
                    title=f"Article {i // 8}",
                    url=f"https://help.example/a/{i // 8}",
                    heading_path=("Help", "Section"),
                    **extra,
                ),
            )
        )
    return points, vocab, weights


def make_queries(
    count: int, *, tenants: int, vocab: list[str], weights: list[float], seed: int = 7
):
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    encoder = SparseEncoder()
    queries = []
    for _ in range(count):
        vec = nprng.standard_normal(DIM).astype(np.float32)
        vec /= np.linalg.norm(vec)
        text = " ".join(rng.choices(vocab[:400], cum_weights=weights[:400], k=rng.randint(2, 6)))
        scope = SearchScope(
            tenant_id=f"tenant-{rng.randrange(tenants):03d}",
            access_groups=frozenset(rng.sample(GROUPS, rng.randint(0, 2))),
        )
        queries.append((vec.tolist(), encoder.encode_query(text), scope, text))
    return queries


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def measure_pair(
    queries, raw: Callable[[tuple], object], wrapped: Callable[[tuple], object]
) -> tuple[list[float], list[float]]:
    """Time both paths on the same queries, interleaved, so cache and CPU noise hit both."""
    # Warm caches and lazy paths with every query: payloads sit in on-disk storage, and the
    # two paths load the payloads of different points (the store's fusion picks others), so a
    # shorter warm-up leaves page faults in whichever path is timed first.
    for q in queries:
        raw(q)
        wrapped(q)
    raw_ms: list[float] = []
    wrapped_ms: list[float] = []
    for i, q in enumerate(queries):
        # Alternate who goes first: the second call on a query finds its pages already hot.
        pairs = ((raw, raw_ms), (wrapped, wrapped_ms))
        for fn, out in pairs if i % 2 == 0 else reversed(pairs):
            t0 = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - t0) * 1000)
    return raw_ms, wrapped_ms


def row(label: str, times: list[float], *, base: str) -> dict[str, float | str]:
    """One table line; ``base`` pairs a store line with the raw line it was timed against."""
    return {"label": label, "base": base, "p50": statistics.median(times), "p95": pct(times, 0.95)}


# --------------------------------------------------------------------------- edge


STORE_PATHS = {  # label suffix -> (mode, fusion)
    "hybrid": ("hybrid", HybridFusion()),
    "hybrid-rrf": ("hybrid", HybridFusion("rrf")),
    "dense": ("dense", HybridFusion()),
    "sparse": ("sparse", HybridFusion()),
}


def store_search(store, mode: str, fusion: HybridFusion, *, limit: int, prefetch: int):
    return lambda q: store.search(
        COLLECTION,
        scope=q[2],
        dense=q[0],
        sparse=q[1],
        mode=mode,
        limit=limit,
        prefetch_limit=prefetch,
        fusion=fusion,
    )


def bench_edge(points, queries, workdir: Path, *, limit: int, prefetch: int, rerank_depth: int):
    import qdrant_edge as qe

    from apps.knowledge.vectorstore.edge import EdgeVectorStore, to_edge_filter

    root = workdir / "edge"
    store = EdgeVectorStore(root, linger_s=math.inf)
    store.ensure_collection(COLLECTION, dense_dim=DIM)
    t0 = time.perf_counter()
    for i in range(0, len(points), 1000):
        store.upsert(COLLECTION, points[i : i + 1000])  # each write runs the optimizer
    info: dict[str, float] = {"ingest_s": time.perf_counter() - t0}
    rows: list[dict[str, float | str]] = []
    # Raw calls run on the very shard the store holds open (private accessor, bench only), so
    # both paths share one process, one open shard and the same page cache.
    with store._shard(COLLECTION) as shard:

        def raw_hybrid(q):
            flt = to_edge_filter(scope_filter(q[2]))
            dq = qe.Query.Nearest(q[0], using=DENSE_VECTOR)
            sq = qe.Query.Nearest(qe.SparseVector(q[1].indices, q[1].values), using=SPARSE_VECTOR)
            return shard.query(
                qe.QueryRequest(
                    limit=limit,
                    prefetches=[
                        qe.Prefetch(limit=prefetch, query=dq, filter=flt),
                        qe.Prefetch(limit=prefetch, query=sq, filter=flt),
                    ],
                    query=qe.Fusion.Rrf(k=RRF_K),
                    filter=flt,
                    with_payload=True,
                )
            )

        def raw_single(q, vector, using):
            flt = to_edge_filter(scope_filter(q[2]))
            return shard.query(
                qe.QueryRequest(
                    limit=limit,
                    query=qe.Query.Nearest(vector, using=using),
                    filter=flt,
                    with_payload=True,
                )
            )

        info["segments"] = shard.info().segments_count
        # The benchmark holds 50k chunks' vectors as Python floats (millions of objects) that
        # a server process would not. Without this, the cyclic GC's full passes over them land
        # in whichever timed call allocates the most: a benchmark artefact of several ms.
        gc.collect()
        gc.freeze()
        raw_paths = {
            "hybrid": raw_hybrid,
            "dense": lambda q: raw_single(q, q[0], DENSE_VECTOR),
            "sparse": lambda q: raw_single(
                q, qe.SparseVector(q[1].indices, q[1].values), SPARSE_VECTOR
            ),
        }
        for label, (mode, fusion) in STORE_PATHS.items():
            raw_ms, store_ms = measure_pair(
                queries,
                raw_paths[mode],
                store_search(store, mode, fusion, limit=limit, prefetch=prefetch),
            )
            rows += [
                row(f"raw EdgeShard.query {mode}", raw_ms, base=label),
                row(f"store.search {label}", store_ms, base=label),
            ]
        # The reranked hybrid: the engine call for `rerank_depth` candidates (with their
        # payloads), and the rerank over them, timed separately on the same queries.
        engine_ms, rerank_ms = time_rerank(
            store, queries, limit=limit, prefetch=prefetch, depth=rerank_depth
        )
        rows += [
            row(f"store.search hybrid, {rerank_depth} out", engine_ms, base="hybrid"),
            row(f"rerank of {rerank_depth} (no engine)", rerank_ms, base="rerank"),
        ]
    gc.unfreeze()
    store.close()
    # What a process pays to (re)open the shard when it takes over the lease.
    opens = []
    for _ in range(3):
        t0 = time.perf_counter()
        qe.EdgeShard.load(str(root / "collections" / COLLECTION / "shard")).close()
        opens.append((time.perf_counter() - t0) * 1000)
    info["open_close_ms"] = statistics.median(opens)
    return rows, info


def time_rerank(store, queries, *, limit: int, prefetch: int, depth: int):
    search = store_search(
        store, "hybrid", HybridFusion(), limit=depth, prefetch=max(prefetch, depth)
    )
    weights = RerankWeights()
    for q in queries:  # warm: payloads of the deeper lists are other pages
        search(q)
    engine_ms: list[float] = []
    rerank_ms: list[float] = []
    for q in queries:
        t0 = time.perf_counter()
        hits = search(q)
        t1 = time.perf_counter()
        # The question vector is the query's own (random) vector: the cost does not depend on it.
        query = RerankQuery(parts=split_query(q[3]), vector=np.asarray(q[0], dtype=np.float32))
        rerank(hits, query=query, weights=weights, limit=limit)
        t2 = time.perf_counter()
        engine_ms.append((t1 - t0) * 1000)
        rerank_ms.append((t2 - t1) * 1000)
    return engine_ms, rerank_ms


# --------------------------------------------------------------------------- qdrant-client


def bench_client_local(points, queries, workdir: Path, *, limit: int, prefetch: int):
    from qdrant_client import models

    from apps.knowledge.vectorstore.client import QdrantClientStore, to_client_filter

    store = QdrantClientStore(path=str(workdir / "local"))
    store.ensure_collection(COLLECTION, dense_dim=DIM)
    t0 = time.perf_counter()
    for i in range(0, len(points), 1000):
        store.upsert(COLLECTION, points[i : i + 1000])
    info = {"ingest_s": time.perf_counter() - t0}
    client = store.client

    def raw_hybrid(q):
        flt = to_client_filter(scope_filter(q[2]))
        sq = models.SparseVector(indices=q[1].indices, values=q[1].values)
        return client.query_points(
            COLLECTION,
            prefetch=[
                models.Prefetch(query=q[0], using=DENSE_VECTOR, filter=flt, limit=prefetch),
                models.Prefetch(query=sq, using=SPARSE_VECTOR, filter=flt, limit=prefetch),
            ],
            query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
            query_filter=flt,
            limit=limit,
            with_payload=True,
        )

    mode, fusion = STORE_PATHS["hybrid"]
    raw_ms, store_ms = measure_pair(
        queries, raw_hybrid, store_search(store, mode, fusion, limit=limit, prefetch=prefetch)
    )
    rows = [
        row("raw query_points hybrid", raw_ms, base="hybrid"),
        row("store.search hybrid", store_ms, base="hybrid"),
    ]
    store.close()
    return rows, info


# --------------------------------------------------------------------------- main


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(title: str, rows: list[dict], info: dict[str, float]) -> None:
    extras = ", ".join(f"{k}={v:.2f}" for k, v in info.items())
    print(f"\n{title}  ({extras}; {load()} after)")
    print(f"  {'query path':<30} {'p50 ms':>8} {'p95 ms':>8}")
    raw = {r["base"]: r for r in rows if r["label"].startswith("raw")}
    for r in rows:
        line = f"  {r['label']:<30} {r['p50']:>8.3f} {r['p95']:>8.3f}"
        base = raw.get(r["base"])
        if base is not None and not r["label"].startswith("raw"):
            line += (
                f"   overhead p50 {r['p50'] - base['p50']:+.3f} p95 {r['p95'] - base['p95']:+.3f}"
                f" ms ({r['p50'] / base['p50']:.1f}x)"
            )
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--prefetch", type=int, default=40)
    parser.add_argument("--rerank-depth", type=int, default=20)
    parser.add_argument(
        "--windows",
        action="store_true",
        help="payloads carry sentence-window vectors (KNOWLEDGE_RERANK_WINDOWS=true)",
    )
    parser.add_argument("--client-max", type=int, default=10_000, help="skip local mode above")
    parser.add_argument("--client-queries", type=int, default=25)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    print("Dense vectors are random unit vectors (latency only); sparse vectors are real BM25.")
    print(f"tenants={args.tenants} limit={args.limit} prefetch={args.prefetch}; {load()}")
    for n in args.sizes:
        t0 = time.perf_counter()
        points, vocab, weights = build_points(n, tenants=args.tenants, windows=args.windows)
        queries = make_queries(args.queries, tenants=args.tenants, vocab=vocab, weights=weights)
        print(f"\nbuilt {n:,} chunks in {time.perf_counter() - t0:.1f}s")
        workdir = Path(tempfile.mkdtemp(prefix="bench-search-"))
        try:
            rows, info = bench_edge(
                points,
                queries,
                workdir,
                limit=args.limit,
                prefetch=args.prefetch,
                rerank_depth=args.rerank_depth,
            )
            print_table(f"Qdrant Edge, {n:,} chunks", rows, info)
            if n <= args.client_max:
                rows, info = bench_client_local(
                    points,
                    queries[: args.client_queries],
                    workdir,
                    limit=args.limit,
                    prefetch=args.prefetch,
                )
                print_table(f"qdrant-client local mode, {n:,} chunks", rows, info)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
