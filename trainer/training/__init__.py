"""Training a CRNN: its config, the loop, the optimiser and schedule, and validation."""
