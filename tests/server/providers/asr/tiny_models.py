"""Tiny NeMo-CTC ONNX models that sherpa-onnx loads and runs for real (built with ``onnx``).

The "acoustic model" scores one word token by the loudness of each feature frame: loud frames
emit the word, quiet frames emit blank. So each burst of sound becomes one word, which makes
partial and final results predictable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

N_MELS = 80
# logit(word) = mean(log-mel) + BETA vs. 0 for blank: the mean log-mel of digital silence is
# below -10, of loud noise above -5 (measured), so the word wins only on loud frames
ALPHA = 1 / N_MELS
BETA = 7.5


def _meta(model: onnx.ModelProto, meta: dict[str, object]) -> None:
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def _scorer(vocab: int, word_id: int, blank_id: int) -> tuple[np.ndarray, np.ndarray]:
    w = np.zeros((N_MELS, vocab), dtype=np.float32)
    b = np.full((vocab,), -100.0, dtype=np.float32)
    w[:, word_id] = ALPHA
    b[word_id] = BETA
    b[blank_id] = 0.0
    return w, b


def write_tokens(path: Path, words: list[str]) -> None:
    path.write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)))


def streaming_nemo_ctc(dest: Path, word: str = "▁hello") -> tuple[Path, Path]:
    """model.onnx + tokens.txt for ``OnlineRecognizer.from_nemo_ctc``; blank is the last token."""
    dest.mkdir(parents=True, exist_ok=True)
    words = ["<unk>", word, "<blk>"]
    vocab = len(words)
    w, b = _scorer(vocab, word_id=1, blank_id=vocab - 1)
    dims = (1, 2, 2)
    nodes = [
        helper.make_node("Transpose", ["features"], ["ft"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["ft", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1),
        helper.make_node("Identity", ["lengths"], ["out_lengths"]),
        helper.make_node("Identity", ["cache_last_channel"], ["next_cache_last_channel"]),
        helper.make_node("Identity", ["cache_last_time"], ["next_cache_last_time"]),
        helper.make_node("Identity", ["cache_last_channel_len"], ["next_cache_last_channel_len"]),
    ]
    f = TensorProto.FLOAT
    i64 = TensorProto.INT64
    graph = helper.make_graph(
        nodes,
        "tiny_streaming_nemo_ctc",
        [
            helper.make_tensor_value_info("features", f, ["B", N_MELS, "T"]),
            helper.make_tensor_value_info("lengths", i64, ["B"]),
            helper.make_tensor_value_info("cache_last_channel", f, ["B", *dims]),
            helper.make_tensor_value_info("cache_last_time", f, ["B", *dims]),
            helper.make_tensor_value_info("cache_last_channel_len", i64, ["B"]),
        ],
        [
            helper.make_tensor_value_info("log_probs", f, ["B", "T", vocab]),
            helper.make_tensor_value_info("out_lengths", i64, ["B"]),
            helper.make_tensor_value_info("next_cache_last_channel", f, ["B", *dims]),
            helper.make_tensor_value_info("next_cache_last_time", f, ["B", *dims]),
            helper.make_tensor_value_info("next_cache_last_channel_len", i64, ["B"]),
        ],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta: dict[str, object] = {
        "window_size": 8,
        "chunk_shift": 8,
        "subsampling_factor": 1,
        "vocab_size": vocab - 1,  # without the blank; sherpa adds it
    }
    for name in ("cache_last_channel", "cache_last_time"):
        for i, d in enumerate(dims, 1):
            meta[f"{name}_dim{i}"] = d
    _meta(model, meta)
    onnx.checker.check_model(model)
    path = dest / "model.onnx"
    onnx.save(model, str(path))
    write_tokens(dest / "tokens.txt", words)
    return path, dest / "tokens.txt"


def offline_nemo_ctc(dest: Path, word: str = "▁world") -> tuple[Path, Path]:
    """model.onnx + tokens.txt for ``OfflineRecognizer.from_nemo_ctc``; blank is the last token."""
    dest.mkdir(parents=True, exist_ok=True)
    words = ["<unk>", word, "<blk>"]
    vocab = len(words)
    w, b = _scorer(vocab, word_id=1, blank_id=vocab - 1)
    nodes = [
        helper.make_node("Transpose", ["x"], ["ft"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["ft", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["logits"]),
        helper.make_node("LogSoftmax", ["logits"], ["logprobs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_offline_nemo_ctc",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_MELS, "T"]),
            helper.make_tensor_value_info("x_len", TensorProto.INT64, ["N"]),
        ],
        [helper.make_tensor_value_info("logprobs", TensorProto.FLOAT, ["N", "T", vocab])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    _meta(model, {"vocab_size": vocab, "subsampling_factor": 1, "normalize_type": ""})
    onnx.checker.check_model(model)
    path = dest / "model.onnx"
    onnx.save(model, str(path))
    write_tokens(dest / "tokens.txt", words)
    return path, dest / "tokens.txt"


def bursts(pattern: str, rate: int = 16000) -> np.ndarray:
    """int16 PCM: each '#' is 0.5 s of loud noise, each '.' 0.5 s of silence."""
    rng = np.random.default_rng(0)
    half = rate // 2
    parts = [
        (rng.normal(0, 6000, half) if ch == "#" else np.zeros(half)).astype(np.int16)
        for ch in pattern
    ]
    return np.concatenate(parts)
