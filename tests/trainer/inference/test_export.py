"""`captchagen export` and reading exported models: metadata, dynamic batch, parity, and the same answers as
the checkpoint from test and eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.helpers import run_cli, shard_images
from trainer.data.preprocess import load_array
from trainer.inference import onnx_model
from trainer.inference.reader import Reader


def images(data, n):
    return [str(p) for p in shard_images(data)[:n]]


def test_the_file_carries_alphabet_preprocessing_and_name(reading_model, exported_model):
    _, ckpt = reading_model
    proto = onnx.load(exported_model)
    meta = {p.key: p.value for p in proto.metadata_props}
    reader = Reader(ckpt)
    assert json.loads(meta["captchagen.alphabet"]) == reader.alphabet.chars == "0123456789"
    assert json.loads(meta["captchagen.preprocessing"]) == reader.pre.to_dict()
    assert meta["captchagen.name"] == reader.name == f"{ckpt.parent.name}/best.pt"
    assert meta["captchagen.format"] == onnx_model.FORMAT
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic: any batch size


@pytest.mark.parametrize("batch", [1, 5, 33])
def test_onnx_reads_like_the_checkpoint_at_any_batch_size(reading_model, exported_model, batch):
    data, ckpt = reading_model
    torch_reader, onnx_reader = Reader(ckpt), Reader(exported_model)
    assert onnx_reader.kind == "onnx" and onnx_reader.alphabet == torch_reader.alphabet
    arrays = np.stack([load_array(p, torch_reader.pre) for p in images(data, batch)])
    logits_t, logits_o = torch_reader.logits(arrays), onnx_reader.logits(arrays)
    assert logits_o.shape == logits_t.shape and logits_o.shape[0] == batch
    assert float((logits_o - logits_t).abs().max()) < 1e-3
    expected = torch_reader.read_arrays(arrays)
    got = onnx_reader.read_arrays(arrays)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [c for _, c in got] == pytest.approx([c for _, c in expected], abs=1e-4)


def test_test_and_eval_give_the_same_output_with_either_file(reading_model, exported_model):
    data, ckpt = reading_model
    outputs = {}
    for model in (ckpt, exported_model):
        code, test_out = run_cli("test", *images(data, 12), "--model", str(model), "--json")
        assert code == 0, test_out
        code, eval_out = run_cli("eval", str(data), "--model", str(model), "--json", "--worst", "0")
        assert code == 0, eval_out
        outputs[model.suffix] = ([json.loads(line) for line in test_out.splitlines()], json.loads(eval_out))
    (rows_pt, eval_pt), (rows_onnx, eval_onnx) = outputs[".pt"], outputs[".onnx"]
    assert [r["text"] for r in rows_onnx] == [r["text"] for r in rows_pt]
    assert [r["confidence"] for r in rows_onnx] == pytest.approx([r["confidence"] for r in rows_pt], abs=1e-4)
    for key in ("seq_accuracy", "cer", "mean_edit_distance", "samples", "by_length", "confusions"):
        assert eval_onnx[key] == eval_pt[key], key
    assert eval_onnx["model"] == str(exported_model)


def test_a_failed_parity_check_fails_loudly_and_writes_nothing(reading_model, tmp_path, monkeypatch):
    _, ckpt = reading_model
    real_call = onnx_model.OnnxModel.__call__
    monkeypatch.setattr(onnx_model.OnnxModel, "__call__", lambda self, a: real_call(self, a) + 0.01)
    out = tmp_path / "model.onnx"
    code, output = run_cli("export", "--model", str(ckpt), "--out", str(out))
    assert code == 1
    assert "parity check failed" in output and "tolerance 0.001" in output and "nothing was written" in output
    assert list(tmp_path.iterdir()) == []


def test_export_checks_parity_on_given_images_and_accepts_a_looser_tolerance(reading_model, tmp_path, monkeypatch):
    data, ckpt = reading_model
    real_call = onnx_model.OnnxModel.__call__
    monkeypatch.setattr(onnx_model.OnnxModel, "__call__", lambda self, a: real_call(self, a) + 0.01)
    out = tmp_path / "model.onnx"
    code, output = run_cli(
        "export", "--model", str(ckpt), "--out", str(out), "--check", str(data / "shard-00000"), "--atol", "0.05"
    )
    assert code == 0, output
    assert "320 given images" in output and out.is_file()
    assert output.startswith(f"exporting {ckpt} to ONNX")  # not a terminal: a line before the quiet seconds


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--out", "model.bin"], "--out must end in .onnx"),
        (["--out", "exists.onnx"], "already exists; add --overwrite"),
        (["--out", "no/such/dir/m.onnx"], "folder no/such/dir does not exist"),
        (["--format", "tflite"], "Invalid value for '--format'"),
        (["--atol", "0"], "--atol"),
        (["--check", "empty-folder"], "--check empty-folder names no images"),
    ],
)
def test_bad_export_options_are_one_line_errors(reading_model, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists.onnx").write_bytes(b"keep")
    (tmp_path / "empty-folder").mkdir()
    code, output = run_cli("export", "--model", str(reading_model[1]), *args)
    assert code == 2 and says in output and "Traceback" not in output
    assert (tmp_path / "exists.onnx").read_bytes() == b"keep"


def test_onnx_files_that_are_not_ours_are_refused_in_one_line(reading_model, tmp_path):
    image = images(reading_model[0], 1)[0]
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [x],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=9), foreign)
    for path, says in [
        (garbage, "is not a readable ONNX model"),
        (foreign, "is not a captchagen ONNX model"),
        (tmp_path / "missing.onnx", "does not exist"),
    ]:
        code, output = run_cli("test", image, "--model", str(path))
        assert code == 1 and says in output and len(output.strip().splitlines()) == 1, output


def test_without_onnxruntime_the_error_says_what_to_install(exported_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    code, output = run_cli("test", "x.png", "--model", str(exported_model))
    assert code == 1 and "needs the onnx extra (onnxruntime is missing)" in output and ".[onnx]" in output


def test_an_exporter_failure_is_one_line_and_writes_nothing(reading_model, tmp_path, monkeypatch):
    import torch

    def unsupported(*args, **kwargs):
        raise RuntimeError("Unsupported: an operator this exporter cannot translate\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", unsupported)
    code, output = run_cli("export", "--model", str(reading_model[1]), "--out", str(tmp_path / "m.onnx"))
    assert code == 1 and "ONNX export of" in output and "RuntimeError: Unsupported: an operator" in output
    assert "more detail" not in output and list(tmp_path.iterdir()) == []


def test_without_the_onnx_extra_export_says_so_before_touching_the_model(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    code, output = run_cli("export", "--model", str(tmp_path / "nosuch.pt"), "--out", str(tmp_path / "m.onnx"))
    assert code == 1 and "needs the onnx extra (onnx and onnxscript are missing)" in output, output
    assert len(output.strip().splitlines()) == 1


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a folder nobody can create files in (/proc)")
def test_an_unwritable_out_folder_is_refused_before_the_export(reading_model, monkeypatch):
    import trainer.inference.export as export_module

    def never(*args, **kwargs):
        raise AssertionError("the export ran")

    monkeypatch.setattr(export_module, "export_onnx", never)
    code, output = run_cli("export", "--model", str(reading_model[1]), "--out", "/proc/captchagen-test.onnx")
    assert code == 2 and "cannot write in --out folder /proc" in output and "Traceback" not in output, output
