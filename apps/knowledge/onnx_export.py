"""The one-time ONNX export of the dense model (apps.knowledge.onnx_embeddings says why and how).

It needs PyTorch and sentence-transformers, so it is imported only when an export is due:
processes that only embed never load torch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from onnxruntime.transformers.optimizer import optimize_model
from sentence_transformers import SentenceTransformer

from apps.knowledge.onnx_embeddings import (
    EXPORT_FORMAT,
    META_FILE,
    MIN_COSINE,
    MODEL_FILE,
    PROBE_TEXTS,
    TOKENIZER_FILE,
    OnnxEncoder,
)


def export(model_path: str | Path, out: Path) -> None:
    """Export the sentence-transformers model at `model_path` into `out` and verify it."""
    # Eager attention traces into the pattern ONNX Runtime fuses into one Attention node
    # (PyTorch's SDPA kernel does not), which makes batched document embedding faster.
    model = SentenceTransformer(
        str(model_path),
        device="cpu",
        local_files_only=True,
        model_kwargs={"attn_implementation": "eager"},
    ).eval()
    features = model.preprocess(["probe text", "a somewhat longer probe text"])
    input_names = [k for k, v in features.items() if isinstance(v, torch.Tensor)]

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            batch = dict(zip(input_names, inputs, strict=True))
            return self.model({**batch, "modality": "text"})["sentence_embedding"]

    raw = out / "raw.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer notes shape checks it records as constants; every one of them holds for
        # any batch (the mask always matches the tokens), and the check below proves the result.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Exporting aten::index", UserWarning)
        torch.onnx.export(
            SentenceEmbedding(),
            tuple(features[name] for name in input_names),
            str(raw),
            input_names=input_names,
            output_names=["sentence_embedding"],
            dynamic_axes={
                **{name: {0: "batch", 1: "tokens"} for name in input_names},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    config = model[0].auto_model.config
    fused = optimize_model(
        str(raw),
        model_type="bert",
        num_heads=getattr(config, "num_attention_heads", 0),
        hidden_size=getattr(config, "hidden_size", 0),
        opt_level=1,
    )
    fused.save_model_to_file(str(out / MODEL_FILE))
    raw.unlink()

    tokenizer = model.tokenizer.backend_tokenizer
    tokenizer.enable_truncation(max_length=model.max_seq_length)
    tokenizer.enable_padding(
        pad_id=model.tokenizer.pad_token_id or 0, pad_token=model.tokenizer.pad_token or "[PAD]"
    )
    tokenizer.save(str(out / TOKENIZER_FILE))
    meta = {
        "format": EXPORT_FORMAT,
        "source": str(Path(model_path).resolve()),
        "inputs": input_names,
        "dimension": int(model.get_embedding_dimension() or 0),
        "max_seq_length": int(model.max_seq_length),
    }

    encoder = OnnxEncoder(out, meta=meta)
    reference = model.encode(
        list(PROBE_TEXTS), normalize_embeddings=True, batch_size=2, show_progress_bar=False
    )
    worst = float(np.min(np.sum(reference * encoder.encode(PROBE_TEXTS, batch_size=2), axis=1)))
    if worst < MIN_COSINE:
        raise RuntimeError(f"ONNX export of {model_path} differs from PyTorch (cosine {worst})")
    (out / META_FILE).write_text(json.dumps({**meta, "verified_min_cosine": worst}))
