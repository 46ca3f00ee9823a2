"""Using a trained model: reading images, CTC decoding, scoring a dataset, exporting to ONNX."""
