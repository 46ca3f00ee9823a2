"""captchagen: reproducible synthetic captcha datasets. This package is the dataset library, which never
imports torch or trainer; captchagen.cli is the command line over it and over trainer."""

__version__ = "0.1.0"
