"""captchagen's tests; tests/helpers.py holds what they share."""
