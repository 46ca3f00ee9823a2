"""Torch side of captchagen: the CRNN model, its data pipeline, training loop, decoding and metrics."""
