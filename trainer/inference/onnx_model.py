"""Exported ONNX models: the metadata they carry, and running them with ONNX Runtime.

An exported model takes the preprocessed images as uint8 [batch, height, width] (grayscale on white, bilinear
resize, autocontrast: trainer.preprocess.to_array), or [batch, 3, height, width] for a colour model, and
normalises them inside the graph, so a caller in any runtime only has to resize. It returns logits
[batch, time, classes]; class 0 is the CTC blank and class i > 0 is alphabet[i - 1]. Everything needed
to read its output is in the file's metadata (keys below).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from captchagen.errors import CaptchagenError, check_format, missing_extra
from trainer.data.preprocess import Preprocessing

FORMAT = "captchagen-onnx-crnn"
# 2: every export carries its binding, so one without it has been edited and is refused. 1 (still read):
# exported before bindings, or while they were optional; a binding it has is checked.
FORMAT_VERSION = 2
OLDER_VERSIONS = (1,)
INPUT = "images"
OUTPUT = "logits"
PREFIX = "captchagen."  # metadata keys: captchagen.format, captchagen.alphabet, ...


def metadata(
    *,
    name: str,
    alphabet: str,
    pre: Preprocessing,
    max_label_len: int | None,
    lengths: tuple[int, int] | None,
    source_sha256: str,
    version: str,
) -> dict[str, str]:
    """The string key/value pairs written into an exported model's metadata_props. `lengths`: the label
    lengths it reads under (shortest, longest), or null for any."""
    values = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "name": name,
        "alphabet": json.dumps(alphabet, ensure_ascii=False),
        "preprocessing": json.dumps(pre.to_dict()),
        "max_label_len": json.dumps(max_label_len),
        "lengths": json.dumps(None if lengths is None else list(lengths)),
        "input": f"{INPUT}: uint8 [batch, {', '.join(map(str, pre.array_shape))}], "
        + ("grayscale" if pre.channels == 1 else "RGB")
        + " on white, bilinear resize, "
        + ("autocontrast" if pre.autocontrast else "no autocontrast"),
        "output": f"{OUTPUT}: float32 [batch, time, classes]; class 0 is the CTC blank, class i is alphabet[i-1]",
        "source_sha256": source_sha256,
        "captchagen_version": version,
    }
    return {PREFIX + k: v for k, v in values.items()}


BOUND = ("alphabet", "preprocessing", "max_label_len", "lengths")  # "lengths": bound when the export has it


def binding(values: dict[str, str], initializers: list[tuple[str, bytes]]) -> str:
    """SHA-256 of what reading an export depends on beyond the graph's code: its alphabet, preprocessing,
    longest label and the lengths it reads under (the metadata strings as written; an export made before
    `lengths` has none) and its weights (the graph's initializers, by name)."""
    h = hashlib.sha256()
    for key in (k for k in BOUND if k in values):
        h.update(key.encode() + b"=" + values[key].encode() + b"\n")
    for name, data in sorted(initializers):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def initializers(proto: Any) -> list[tuple[str, bytes]]:
    """(name, bytes) of an ONNX model's weights."""
    from onnx import numpy_helper

    return [(t.name, numpy_helper.to_array(t).tobytes()) for t in proto.graph.initializer]


def read_metadata(raw: dict[str, str], path: Path) -> dict[str, Any]:
    """Parse captchagen metadata from an ONNX model's custom metadata; CaptchagenError if it is not ours."""
    values = {k[len(PREFIX) :]: v for k, v in raw.items() if k.startswith(PREFIX)}
    try:
        version = int(values.get("format_version", "0"))
    except ValueError:
        version = -1
    check_format(
        {"format": values.get("format"), "format_version": version},
        path,
        FORMAT,
        FORMAT_VERSION,
        "captchagen ONNX model",
        OLDER_VERSIONS,
    )
    try:
        meta = {
            "name": values["name"],
            "alphabet": json.loads(values["alphabet"]),
            "preprocessing": Preprocessing(**json.loads(values["preprocessing"])),
            "max_label_len": json.loads(values["max_label_len"]),
            "lengths": _lengths(json.loads(values.get("lengths", "null"))),
            "binding": values.get("binding"),
            "format_version": version,
            "raw": {k: values[k] for k in BOUND if k in values},
        }
        if not isinstance(meta["alphabet"], str) or not isinstance(meta["max_label_len"], int | None):
            raise TypeError("alphabet must be a string and max_label_len a whole number or null")
        return meta
    except (KeyError, TypeError, ValueError) as e:
        raise CaptchagenError(f"{path}: damaged captchagen metadata ({type(e).__name__}: {e})") from None


def _lengths(value: Any) -> tuple[int, int] | None:
    """The `lengths` metadata: null, or [shortest, longest] with 1 <= shortest <= longest; TypeError if not."""
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise TypeError("lengths must be null or [shortest, longest]")
    if not 1 <= value[0] <= value[1]:
        raise TypeError("lengths must be null or [shortest, longest] with 1 <= shortest <= longest")
    return value[0], value[1]


def import_onnxruntime() -> ModuleType:
    try:
        import onnxruntime
    except ImportError:
        raise missing_extra("reading an ONNX model", "onnx", "onnxruntime") from None
    return onnxruntime


class OnnxModel:
    """An exported model in an ONNX Runtime session on the CPU."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        ort = import_onnxruntime()
        if not path.is_file():
            raise CaptchagenError(f"ONNX model {path} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, one per core
        options.log_severity_level = 3  # errors only
        # ORT's idle threads otherwise spin for a while after each run, taking the cores from the PyTorch ops
        # (CTC decoding and scoring) that follow: at batch 1 on 2 cores that tripled the time per image.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own types for every kind of bad file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CaptchagenError(f"{path} is not a readable ONNX model ({first[:200]})") from None
        self.meta = read_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        self._check(path)

    def _check(self, path: Path) -> None:
        """The metadata belongs to these weights (its binding, when the export wrote one) and names one class
        per output but the blank; CaptchagenError if not, as the readings would be shifted or empty."""
        classes = self.session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.meta["alphabet"]) + 1:
            raise CaptchagenError(
                f"{path}: its metadata names {len(self.meta['alphabet'])} characters but the model has {classes} "
                f"output classes ({len(self.meta['alphabet']) + 1} expected: one per character and the CTC blank)"
            )
        shape = tuple(self.session.get_inputs()[0].shape[1:])
        want = self.meta["preprocessing"].array_shape
        if all(isinstance(d, int) for d in shape) and shape != want:
            raise CaptchagenError(
                f"{path}: its metadata's preprocessing gives images of {list(want)} but the model takes {list(shape)}"
            )
        if self.meta["binding"] is None and self.meta["format_version"] >= 2:
            raise CaptchagenError(
                f"{path}: it carries no binding, which every export of its format has (removed after export?), "
                "so nothing ties its alphabet and preprocessing to its weights; it is not used"
            )
        if self.meta["binding"] is None:
            return  # exported before bindings: the class count and input size above are what can be checked
        try:
            import onnx
        except ImportError:
            raise missing_extra("checking an exported model", "onnx", "onnx") from None
        proto = onnx.load(str(path))
        if binding(self.meta["raw"], initializers(proto)) != self.meta["binding"]:
            raise CaptchagenError(
                f"{path}: its alphabet, preprocessing or label length no longer match its weights (metadata edited "
                "after export?); it would read wrong characters"
            )

    def __call__(self, arrays: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W] to logits [N, T, C]."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(arrays, dtype=np.uint8)})[0]
