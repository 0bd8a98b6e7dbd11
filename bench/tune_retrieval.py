"""Offline sweep of the retrieval settings over every evaluation set at once.

Each set is ingested through the real pipeline (as `evaluate_retrieval` does); then every
point's vectors and payload are read back from the store, and dense, sparse (BM25 weights x
the engine's IDF formula), fusion, query shaping and rerank are recomputed in NumPy for each
candidate setting, so a grid of settings costs seconds instead of one store run each. The
chosen settings are then checked with the real command (docs/retrieval.md has both).

    DATA_DIR=/tmp/tune DATABASE_URL=sqlite:////tmp/tune/db.sqlite3 \
        .venv/bin/python bench/tune_retrieval.py [--sets stackfaq,or_sharc_dev,demo]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def setup() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    # Models whose migration is still being written in this checkout get a table anyway.
    from django.apps import apps
    from django.db import connection

    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in apps.get_models():
            if model._meta.managed and model._meta.db_table not in existing:
                editor.create_model(model)


def read_points(store, collection: str, tenant_id: str):
    """Every point of the tenant: ids, dense matrix, sparse dicts, payloads."""
    import qdrant_edge as qe

    from apps.knowledge.vectorstore.base import ownership_filter
    from apps.knowledge.vectorstore.edge import to_edge_filter

    flt = to_edge_filter(ownership_filter(tenant_id=tenant_id))
    with store._shard(store._resolve(collection)) as shard:
        records, _ = shard.scroll(
            qe.ScrollRequest(limit=100_000, filter=flt, with_payload=True, with_vector=True)
        )
    ids, dense, sparse, payloads = [], [], [], []
    for r in records:
        ids.append(str(r.id))
        vec = r.vector
        dense.append(np.asarray(vec["dense"], dtype=np.float32))
        sv = vec["sparse"]
        sparse.append(dict(zip(sv.indices, sv.values, strict=True)))
        payloads.append(dict(r.payload))
    return ids, np.vstack(dense), sparse, payloads


class Prepared:
    """One set, ready for the sweep."""

    def __init__(self, name, questions, ids, dense, sparse, payloads, key_of_doc):
        self.name = name
        self.questions = questions
        self.ids = ids
        self.dense = dense
        self.payloads = payloads
        self.keys = [key_of_doc[p["document_id"]] for p in payloads]
        n = len(ids)
        df = Counter(t for s in sparse for t in s)
        # Qdrant's IDF modifier: ln(1 + (N - n + 0.5) / (n + 0.5)).
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.postings: dict[int, list[tuple[int, float]]] = {}
        for i, s in enumerate(sparse):
            for t, v in s.items():
                self.postings.setdefault(t, []).append((i, v))
        self.windows: list[np.ndarray | None] = []

    def sparse_scores(self, query: dict[int, float]) -> np.ndarray:
        scores = np.zeros(len(self.ids), dtype=np.float32)
        for t, w in query.items():
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i, v in self.postings[t]:
                scores[i] += w * idf * v
        return scores


def prepare(name, evaluation_set, embedder, encoder, window_title: bool):
    from apps.knowledge import rerank, runtime
    from apps.knowledge.evaluation import ingested

    t0 = time.perf_counter()
    with ingested(evaluation_set.corpus) as (tenant, _key_of, _stats):
        from apps.knowledge.index_lifecycle import active_index
        from apps.knowledge.models import Document

        doc_keys = {
            str(pid): key
            for pid, key in Document.objects.for_tenant(tenant).values_list("public_id", "key")
        }
        store = runtime.get_store()
        ids, dense, sparse, payloads = read_points(
            store, active_index().collection, str(tenant.public_id)
        )
    print(f"{name}: {len(ids)} points in {time.perf_counter() - t0:.0f} s", flush=True)
    prep = Prepared(name, evaluation_set.questions, ids, dense, sparse, payloads, doc_keys)
    t0 = time.perf_counter()
    texts, owner = [], []
    for i, p in enumerate(payloads):
        heading_path = p.get("heading_path") or [p.get("title", "")]
        for text in rerank.window_texts(p["text"], heading_path if window_title else ()):
            texts.append(text)
            owner.append(i)
    vecs = embedder.embed_documents(texts, batch_size=64)
    per: list[list[np.ndarray]] = [[] for _ in ids]
    for i, v in zip(owner, vecs, strict=True):
        per[i].append(v)
    # Through the int8 packing, as the payload stores them.
    prep.windows = [
        rerank.unpack_vectors(rerank.pack_vectors(np.vstack(v))) if v else None for v in per
    ]
    print(f"{name}: {len(texts)} windows embedded in {time.perf_counter() - t0:.0f} s", flush=True)
    # Query side: the whole message and the question sentence.
    prep.parts = [rerank.split_query(q.question) for q in prep.questions]
    full = embedder.embed_documents([q.question for q in prep.questions], batch_size=64)
    quest = embedder.embed_documents([p.question for p in prep.parts], batch_size=64)
    prep.q_full, prep.q_question = full, quest
    prep.tokenize = encoder.tokenize
    prep.term_id = encoder.term_id
    return prep


def run_config(prep: Prepared, cfg: dict, mode: str) -> dict:
    from apps.knowledge import rerank
    from apps.knowledge.evaluation import dedupe, score_run
    from apps.knowledge.vectorstore.base import SearchHit
    from apps.knowledge.vectorstore.fusion import HybridFusion, fuse

    depth = cfg["prefetch"]
    run = {}
    for qi, q in enumerate(prep.questions):
        parts = prep.parts[qi]
        if parts.context:
            dvec = rerank.mix_query_vectors(prep.q_full[qi], prep.q_question[qi], cfg["qw"])
            terms = rerank.weighted_query_terms(parts, prep.tokenize, cfg["cw"])
        else:
            dvec = prep.q_full[qi]
            terms = dict.fromkeys(prep.tokenize(q.question), 1.0)
        squery: dict[int, float] = {}
        for t, w in terms.items():
            tid = prep.term_id(t)
            squery[tid] = max(squery.get(tid, 0.0), w)
        ds = prep.dense @ dvec
        dtop = np.argsort(-ds)[:depth]
        dense_hits = [
            SearchHit(prep.ids[i], float(ds[i]), prep.payloads[i], {"dense"}) for i in dtop
        ]
        ss = prep.sparse_scores(squery)
        stop = [i for i in np.argsort(-ss)[:depth] if ss[i] > 0]
        sparse_hits = [
            SearchHit(prep.ids[i], float(ss[i]), prep.payloads[i], {"sparse"}) for i in stop
        ]
        if mode == "dense":
            hits = dense_hits[:20]
        elif mode == "sparse":
            hits = sparse_hits[:20]
        else:
            fusion = HybridFusion(
                method=cfg["fusion"],
                dense_weight=cfg["dw"],
                rrf_k=int(cfg.get("k", 60)),
                adaptive=cfg.get("ad", 0.0),
            )
            limit = max(cfg["rdepth"], 20) if mode == "rerank" else 20
            hits = fuse(dense_hits, sparse_hits, limit=limit, fusion=fusion)
            if mode == "rerank":
                index = {pid: i for i, pid in enumerate(prep.ids)}
                qv = prep.q_question[qi] if cfg["simq"] == "question" else dvec
                for h in hits:
                    w = prep.windows[index[h.id]]
                    if w is not None:
                        h.payload = {**h.payload, "_w": w}
                hits = rerank_numpy(hits, parts, qv, cfg)
        keys = [h.payload["document_id"] for h in hits]
        run[q.id] = dedupe(keys)[:10]
    qrels = {q.id: q.gold_ids for q in prep.questions}
    doc_runs = {qid: [prep_key(prep, k) for k in ks] for qid, ks in run.items()}
    return score_run(doc_runs, qrels)


_KEYMAP: dict[int, dict[str, str]] = {}


def prep_key(prep: Prepared, document_id: str) -> str:
    m = _KEYMAP.get(id(prep))
    if m is None:
        m = _KEYMAP[id(prep)] = {
            p["document_id"]: k for p, k in zip(prep.payloads, prep.keys, strict=True)
        }
    return m[document_id]


def rerank_numpy(hits, parts, qv, cfg):
    from apps.knowledge import rerank

    weights = rerank.RerankWeights(
        fused=1.0, maxsim=cfg["wm"], phrase=cfg["wp"], title=cfg["wt"], page=cfg["wpg"]
    )
    # Same code as the product, with the windows handed over unpacked.
    orig = rerank.maxsim_score
    rerank.maxsim_score = lambda v, payload: (
        float((payload["_w"] @ v).max()) if "_w" in payload else None
    )
    try:
        return rerank.rerank(
            hits, query=rerank.RerankQuery(parts=parts, vector=qv), weights=weights, limit=20
        )
    finally:
        rerank.maxsim_score = orig


def joint(preps, args) -> int:
    def report(label, cfg, mode):
        rows = [run_config(p, cfg, mode) for p in preps]
        cells = "  ".join(
            f"{p.name[:8]:>8} h5={r['hit@5']:.3f} mrr={r['mrr@10']:.3f}"
            for p, r in zip(preps, rows, strict=True)
        )
        print(f"{label:<58} {cells}", flush=True)
        return rows

    base = {
        "prefetch": 40,
        "fusion": "convex",
        "dw": 0.8,
        "qw": 0.0,
        "cw": 1.0,
        "rdepth": 40,
        "wm": 0.0,
        "wp": 0.0,
        "wt": 0.0,
        "wpg": 0.0,
        "simq": "question",
    }
    for spec in args.configs.split(";"):
        cfg = dict(base)
        mode = "hybrid"
        for item in spec.split():
            k, v = item.split("=")
            if k == "mode":
                mode = v
            else:
                cfg[k] = v if k in ("fusion", "simq") else float(v)
        cfg["prefetch"] = int(cfg["prefetch"])
        cfg["rdepth"] = int(cfg["rdepth"])
        report(spec, cfg, mode)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default="stackfaq,or_sharc_dev,demo")
    parser.add_argument(
        "--plain-windows",
        dest="window_title",
        action="store_false",
        help="embed windows without their headings (as first measured)",
    )
    parser.add_argument("--cache", default="")
    parser.add_argument(
        "--configs",
        default=";".join(
            [
                "qw=0.5 cw=0.3 mode=dense",
                "qw=0.5 cw=0.3 mode=sparse",
                "qw=0.5 cw=0.3 dw=0.6 ad=1",
                "qw=0.5 cw=0.3 dw=0.6 ad=1 mode=rerank wp=0.15",
                "qw=0.5 cw=0.3 dw=0.6 ad=1 mode=rerank wp=0.15 wpg=0.2",
            ]
        ),
        help="';'-separated settings: qw cw dw ad fusion k prefetch rdepth wm wp wt wpg simq mode",
    )
    args = parser.parse_args()
    setup()
    from apps.knowledge import runtime
    from apps.knowledge.evaluation import load_set

    embedder = runtime.get_embedder()
    encoder = runtime.get_sparse_encoder("english")
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        import pickle

        preps = pickle.loads(cache.read_bytes())  # noqa: S301 - our own file
    else:
        preps = [
            prepare(n, load_set(n), embedder, encoder, args.window_title)
            for n in args.sets.split(",")
        ]
        if cache:
            import pickle

            for p in preps:
                p.tokenize = p.term_id = None
            cache.write_bytes(pickle.dumps(preps))
    for p in preps:
        p.tokenize, p.term_id = encoder.tokenize, encoder.term_id
    return joint(preps, args)


if __name__ == "__main__":
    sys.exit(main())
