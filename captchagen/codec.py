"""The file-name codec: `<index>_<label>.png`, with a reversible escape for unsafe characters.

A label character is written as itself when it is a printable ASCII character that is safe in a file name
on Linux, macOS and Windows. Every other character is written as `%XX` for each byte of its UTF-8 form, in
upper-case hex: `%` itself, the path separators `/` and `\\`, the characters Windows forbids (`: * ? " < > |`),
control characters and NUL, and every non-ASCII character (macOS may rewrite those to another Unicode
normal form, which would change the label). Decoding reverses this exactly, so the label is recoverable
from the file name alone, for any alphabet.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

from captchagen.errors import BadInput

NAME = "pct-utf8-v1"
ESCAPE = "%"
UNSAFE_ASCII = frozenset('%/\\:*?"<>|')
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_NAME_BYTES = 255  # the limit of ext4, APFS and NTFS


def _safe(c: str) -> bool:
    return 0x20 < ord(c) < 0x7F and c not in UNSAFE_ASCII


def escape(label: str) -> str:
    """The label as it appears in a file name."""
    return "".join(c if _safe(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in label)


def unescape(text: str) -> str:
    """Inverse of `escape`. Raises BadInput on a `%` not followed by two hex digits or on bad UTF-8."""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == ESCAPE:
            hex_digits = text[i + 1 : i + 3]
            if len(hex_digits) != 2 or not all(h in string.hexdigits for h in hex_digits):
                raise BadInput(f"file name part {text!r} has a '%' that is not followed by two hex digits")
            raw.append(int(hex_digits, 16))
            i += 3
        else:
            raw += text[i].encode("utf-8")
            i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"file name part {text!r} escapes bytes that are not UTF-8 ({e.reason})") from None


@dataclass(frozen=True)
class ParsedName:
    """What a file name says: the part before the first `_` (the index, for made datasets) and the label."""

    stem: str
    label: str


def image_name(index: int, label: str, width: int = 6) -> str:
    """`000042_ABC.png`: the zero-padded index, an underscore, the escaped label."""
    return f"{index:0{width}d}_{escape(label)}.png"


def parse_name(name: str) -> ParsedName:
    """Split `<anything>_<label>.<ext>` into its parts. The label follows the first `_`."""
    suffix = next((s for s in IMAGE_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        raise BadInput(f"{name!r} is not an image file name ({', '.join(IMAGE_SUFFIXES)})")
    base = name[: -len(suffix)]
    stem, sep, escaped = base.partition("_")
    if not sep or not escaped:
        raise BadInput(f"{name!r} does not hold a label: expected <anything>_<label>{suffix}")
    try:
        label = unescape(escaped)
    except BadInput as e:
        raise BadInput(f"{name!r}: {e}") from None
    return ParsedName(stem=stem, label=label)


def image_files(root: Path) -> list[Path]:
    """Every file under `root` (recursively) whose name has an image suffix, sorted by path."""
    return sorted(p for p in root.rglob("*") if p.name.lower().endswith(IMAGE_SUFFIXES) and p.is_file())


def max_escaped_len(chars: str) -> int:
    """Bytes the longest-escaping character of `chars` takes in a file name."""
    return max(len(escape(c).encode("utf-8")) for c in chars)
