"""The one immutable alphabet shared by the generator, the file-name codec, the trainer and the decoder."""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from captchagen.errors import BadInput

PRESETS: dict[str, str] = {
    "digits": string.digits,
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "alnum": string.digits + string.ascii_uppercase + string.ascii_lowercase,
    "upper-digits": string.digits + string.ascii_uppercase,  # what most captchas draw
    "hex": string.digits + "ABCDEF",
}

BLANK = 0  # CTC blank index; character i of the alphabet is class i + 1.


def expand(spec: str) -> str:
    """The characters a preset name stands for; any other string stands for itself."""
    return PRESETS.get(spec, spec)


def describe_char(c: str) -> str:
    """`'A' (U+0041)`: how errors name a character, visible even when it is whitespace."""
    shown = repr(c) if unicodedata.category(c)[0] not in "CZ" else "<" + unicodedata.name(c, "unnamed") + ">"
    return f"{shown} (U+{ord(c):04X})"


@dataclass(frozen=True)
class Alphabet:
    """An ordered set of distinct, printable characters.

    Index 0 is reserved for the CTC blank, so `encode` maps the i-th character to i + 1.
    """

    chars: str
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.chars:
            raise BadInput("the alphabet is empty", param="alphabet")
        seen: set[str] = set()
        for c in self.chars:
            if c in seen:
                raise BadInput(f"the alphabet repeats the character {describe_char(c)}", param="alphabet")
            seen.add(c)
            category = unicodedata.category(c)
            if c.isspace() or category[0] in "CZ":
                raise BadInput(
                    f"the alphabet contains whitespace or a control character {describe_char(c)}",
                    param="alphabet",
                )
            if category[0] == "M":
                raise BadInput(
                    f"the alphabet contains a combining mark {describe_char(c)}, which cannot be drawn alone",
                    param="alphabet",
                )
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.chars)})

    @classmethod
    def from_spec(cls, spec: str) -> Alphabet:
        """A preset name (PRESETS: digits, upper, lower, alnum, upper-digits, hex) or the literal characters."""
        return cls(expand(spec))

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> Alphabet:
        """The characters seen in `labels`, in code-point order (stable whatever the label order)."""
        return cls("".join(sorted(set("".join(labels)))))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, c: object) -> bool:
        return c in self._index

    @property
    def num_classes(self) -> int:
        """Number of model outputs: the characters plus the CTC blank."""
        return len(self.chars) + 1

    def check(self, text: str, where: str = "label") -> None:
        """Raise BadInput naming the first character of `text` that is not in the alphabet."""
        for c in text:
            if c not in self._index:
                raise BadInput(f"{where} {text!r} has the character {describe_char(c)}, which is not in the alphabet")

    def encode(self, text: str, where: str = "label") -> list[int]:
        """Class indices (1-based; 0 is the blank) of each character of `text`."""
        self.check(text, where)
        return [self._index[c] for c in text]

    def decode(self, indices: Sequence[int]) -> str:
        """Inverse of `encode`: class indices (no blanks) back to text."""
        return "".join(self.chars[i - 1] for i in indices)
