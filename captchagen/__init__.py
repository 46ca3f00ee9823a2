"""captchagen: reproducible synthetic captcha datasets (no torch is imported here)."""

__version__ = "0.1.0"
