"""Shared fixtures: the embedding model and tokenizer load once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder():
    from apps.knowledge.embeddings import DenseEmbedder

    return DenseEmbedder()


@pytest.fixture(scope="session")
def chunker():
    from apps.knowledge.chunking import Chunker

    return Chunker()
