"""`captchagen export`: a checkpoint to an ONNX file with its alphabet and preprocessing as metadata, a dynamic
batch dimension, and a parity check against the checkpoint before the file is put in place."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import captchagen
from captchagen import atomic
from captchagen.errors import EXTRA_MODULES, BadInput, CaptchagenError, require_modules
from trainer import checkpoint
from trainer.data.preprocess import Preprocessing, load_array, to_array
from trainer.inference import onnx_model
from trainer.inference.decode import decode
from trainer.inference.lengths import LengthChoice, chosen_lengths
from trainer.models.arch import ImageReader

OPSET = 18
DEFAULT_ATOL = 1e-3  # on logits; fp32 runtimes differ by about 1e-5 here
SINGLE_CHECKS = 4  # parity images also run one at a time, so batch 1 of the dynamic batch is checked too


class ParityError(CaptchagenError):
    """The exported model and the checkpoint disagree."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    name: str
    images: int
    source: str  # where the parity images came from
    max_abs_diff: float
    atol: float
    same_strings: int
    opset: int
    size_bytes: int
    lengths: tuple[int, int] | None  # what it reads under; None: any length


def parity_arrays(pre: Preprocessing, alphabet: str, lengths: tuple[int, int], n: int, seed: int = 0) -> np.ndarray:
    """`n` captchas of `lengths` characters rendered in memory with the model's alphabet (bundled fonts,
    default image size), as model input. Raises BadInput when the bundled fonts cannot draw the alphabet."""
    from PIL import Image

    from captchagen.config import GenerationConfig, resolve
    from captchagen.render import Renderer

    try:
        resolved = resolve(GenerationConfig(n=n, alphabet=alphabet, min_len=lengths[0], max_len=lengths[1], seed=seed))
    except BadInput as e:
        raise BadInput(f"cannot draw parity images ({e}); give your own with `check` IMAGES", "check") from None
    renderer = Renderer(resolved)
    return np.stack([to_array(Image.open(io.BytesIO(renderer.image(i)[1])), pre) for i in range(n)])


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter warns about deprecations and optional packages it does not need; none of it is ours."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _check_parity(
    path: Path, net: ImageReader, arrays: np.ndarray, alphabet, atol: float, lengths: tuple[int, int] | None
) -> tuple[float, int]:
    """(max |logit difference|, strings that agree, each read under `lengths` as the export will be); raises
    ParityError if either check fails."""
    runtime = onnx_model.OnnxModel(path)
    with torch.no_grad():
        expected = net(torch.from_numpy(arrays)).numpy()
    got = runtime(arrays)
    singles = np.concatenate([runtime(arrays[i : i + 1]) for i in range(min(SINGLE_CHECKS, len(arrays)))])
    if got.shape != expected.shape:
        raise ParityError(f"exported model gives logits of shape {got.shape}, the checkpoint {expected.shape}")
    diff = float(max(np.abs(got - expected).max(), np.abs(singles - expected[: len(singles)]).max()))
    ours = [t for t, _ in decode(torch.from_numpy(expected).transpose(0, 1), alphabet, lengths=lengths)]
    theirs = [t for t, _ in decode(torch.from_numpy(got).transpose(0, 1), alphabet, lengths=lengths)]
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    if diff > atol or same != len(ours):
        worst = next(((a, b) for a, b in zip(ours, theirs, strict=True) if a != b), None)
        detail = f"; first differing string: checkpoint {worst[0]!r}, export {worst[1]!r}" if worst else ""
        raise ParityError(
            f"parity check failed: max |logit difference| {diff:.3g} (tolerance {atol:g}), "
            f"{same}/{len(ours)} strings agree{detail}; nothing was written"
        )
    return diff, same


def export_onnx(
    checkpoint_path: Path,
    out: Path,
    check_paths: list[str] | None = None,
    n_check: int = 64,
    atol: float = DEFAULT_ATOL,
    name: str | None = None,
    lengths: LengthChoice = "trained",
) -> ExportReport:
    """Export, add metadata, check parity on a temp file, then rename it to `out`. `lengths`: what the
    export reads under, written into its metadata (by default the lengths the model was trained on)."""
    require_modules("captchagen export", "onnx", EXTRA_MODULES["onnx"])
    record = checkpoint.read(checkpoint_path)
    model, alphabet, pre = checkpoint.load_model(record, checkpoint_path)
    net = ImageReader(model, pre).eval()
    max_len = record.config().max_label_len
    read_under = chosen_lengths(lengths, record.config().lengths)
    if check_paths:
        arrays = np.stack([load_array(p, pre) for p in check_paths])
        source = f"{len(check_paths)} given images"
    else:
        arrays = parity_arrays(pre, alphabet.chars, read_under or (1, max_len or 10), n_check)
        source = f"{n_check} rendered captchas"

    import onnx

    name = name or checkpoint.model_name(checkpoint_path)
    meta = onnx_model.metadata(
        name=name,
        alphabet=alphabet.chars,
        pre=pre,
        max_label_len=max_len,
        lengths=read_under,
        source_sha256=hashlib.sha256(Path(checkpoint_path).read_bytes()).hexdigest(),
        version=captchagen.__version__,
    )
    example = torch.zeros((2, *pre.array_shape), dtype=torch.uint8)
    with atomic.replacing(out) as tmp:  # renamed into place only once the parity check has passed
        try:
            with _quiet_exporter():
                program = torch.onnx.export(
                    net,
                    (example,),
                    dynamo=True,
                    opset_version=OPSET,
                    verbose=False,
                    input_names=[onnx_model.INPUT],
                    output_names=[onnx_model.OUTPUT],
                    dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=65536)}},
                )
                if program is None:  # only the legacy exporter (dynamo=False) returns nothing
                    raise RuntimeError("the exporter returned no program")
                proto = program.model_proto
        except Exception as e:  # the exporter raises many types; all mean the same to the user
            first = (str(e).strip().splitlines() or [""])[0][:300]
            raise CaptchagenError(f"ONNX export of {checkpoint_path} failed: {type(e).__name__}: {first}") from None
        bound = {k: meta[onnx_model.PREFIX + k] for k in onnx_model.BOUND}
        meta[onnx_model.PREFIX + "binding"] = onnx_model.binding(bound, onnx_model.initializers(proto))
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        proto.doc_string = f"captchagen CRNN {name}: {meta['captchagen.input']} -> {meta['captchagen.output']}"
        onnx.checker.check_model(proto)
        onnx.save_model(proto, tmp)
        diff, same = _check_parity(tmp, net, arrays, alphabet, atol, read_under)
    return ExportReport(
        path=out,
        name=name,
        images=len(arrays),
        source=source,
        max_abs_diff=diff,
        atol=atol,
        same_strings=same,
        opset=OPSET,
        size_bytes=out.stat().st_size,
        lengths=read_under,
    )
