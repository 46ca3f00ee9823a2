"""Fitting a style to a pool of unlabelled captchas (analysis by synthesis)."""
