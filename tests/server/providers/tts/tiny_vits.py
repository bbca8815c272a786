"""A tiny VITS ONNX model for sherpa-onnx ``OfflineTts``: every input token becomes a fixed tone
of ``SAMPLES_PER_TOKEN`` samples, so the output length is predictable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SAMPLE_RATE = 16000
SAMPLES_PER_TOKEN = 800  # 50 ms
TOKENS = [
    "_",
    "h",
    "e",
    "l",
    "o",
    "w",
    "r",
    "d",
    "a",
    "m",
    "p",
    " ",
    ",",
    ".",
    "!",
    "?",
    ";",
    ":",
    "sil",
    "eos",
    "sp",
]
LEXICON = {"hello": "h e l o", "world": "w o r l d", "lamp": "l a m p"}


def write_tiny_vits(dest: Path) -> Path:
    """model.onnx + tokens.txt + lexicon.txt in ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    t = np.arange(SAMPLES_PER_TOKEN, dtype=np.float32) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32).reshape(1, 1, -1)
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["xf", "axes"], ["x3"]),  # (1, L, 1)
        helper.make_node("Mul", ["x3", "zero"], ["z3"]),
        helper.make_node("Add", ["z3", "tone"], ["tones"]),  # (1, L, K)
        helper.make_node("Reshape", ["tones", "shape"], ["y"]),  # (1, 1, L*K)
    ]
    f, i64 = TensorProto.FLOAT, TensorProto.INT64
    graph = helper.make_graph(
        nodes,
        "tiny_vits",
        [
            helper.make_tensor_value_info("x", i64, [1, "L"]),
            helper.make_tensor_value_info("x_length", i64, [1]),
            helper.make_tensor_value_info("noise_scale", f, [1]),
            helper.make_tensor_value_info("length_scale", f, [1]),
            helper.make_tensor_value_info("noise_scale_w", f, [1]),
        ],
        [helper.make_tensor_value_info("y", f, [1, 1, "S"])],
        [
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "zero"),
            numpy_helper.from_array(tone, "tone"),
            numpy_helper.from_array(np.array([1, 1, -1], dtype=np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = {
        "sample_rate": SAMPLE_RATE,
        "n_speakers": 1,
        "language": "English",
        "comment": "vits",
        "add_blank": 0,
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(dest / "model.onnx"))
    (dest / "tokens.txt").write_text("".join(f"{tok} {i}\n" for i, tok in enumerate(TOKENS)))
    (dest / "lexicon.txt").write_text("".join(f"{w} {p}\n" for w, p in LEXICON.items()))
    return dest
