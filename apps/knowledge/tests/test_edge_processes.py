"""Qdrant Edge shards can be open in one process at a time; the store must hand them over.

A child process keeps the collection open (``linger_s=inf``, like a long-lived web worker);
this process then writes to it. The write has to obtain the shard through the lease protocol
(``.want`` signal -> holder releases), and the child must see the write when it next reads.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from apps.knowledge.embeddings import SparseEncoder
from apps.knowledge.vectorstore import ChunkPoint, chunk_payload
from apps.knowledge.vectorstore.edge import EdgeVectorStore

REPO = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import math, sys, uuid
    sys.path.insert(0, {repo!r})
    from apps.knowledge.embeddings import SparseEncoder
    from apps.knowledge.vectorstore import ChunkPoint, chunk_payload
    from apps.knowledge.vectorstore.edge import EdgeVectorStore

    store = EdgeVectorStore({root!r}, linger_s=math.inf, lock_timeout_s=60)
    store.ensure_collection("kb", dense_dim=4)
    store.upsert("kb", [ChunkPoint(
        id=str(uuid.uuid4()), dense=[1.0, 0.0, 0.0, 0.0],
        sparse=SparseEncoder().encode_document("from the child"),
        payload=chunk_payload(tenant_id="t", source_id="s", document_id="child",
                              chunk_id="c", access_groups=None, text="from the child"))])
    print("ready", store.count("kb"), flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print("count", store.count("kb"), flush=True)
    store.close()
    """
)


def test_writer_gets_shard_from_process_holding_it_open(tmp_path):
    root = tmp_path / "vectors"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO), root=str(root))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().split() == ["ready", "1"]
        # The child now holds the shard open indefinitely; we still get to write.
        store = EdgeVectorStore(root, linger_s=0, lock_timeout_s=60)
        store.upsert(
            "kb",
            [
                ChunkPoint(
                    id=str(uuid.uuid4()),
                    dense=[0.0, 1.0, 0.0, 0.0],
                    sparse=SparseEncoder().encode_document("from the parent"),
                    payload=chunk_payload(
                        tenant_id="t",
                        source_id="s",
                        document_id="parent",
                        chunk_id="c",
                        access_groups=None,
                        text="from the parent",
                    ),
                )
            ],
        )
        assert store.count("kb") == 2
        child.stdin.write("count\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["count", "2"]  # reopened, sees our write
        assert store.count("kb", tenant_id="t", document_id="child") == 1
        store.close()
    finally:
        child.stdin.close()
        assert child.wait(timeout=60) == 0
