"""The bundled fonts, installed as the package data of `captchagen.fontdata` (see captchagen/fonts.py)."""
