"""The torch side of captchagen: the CRNN and what both sides share at the top (shape, model, checkpoint,
metrics, runs, device); data/, training/, inference/ and serving/ below. Used by captchagen.cli; uses the
torch-free dataset library in captchagen/ and never the CLI."""
