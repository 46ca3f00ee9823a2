"""What a comparison's models read on the pool, for a person to judge: a sheet of held-out pool images with
the start's reading and the self-trained model's under each, and whether the readings' letters keep to one
case where the alphabet has both.

No label-free estimate catches a self-training that learnt a consistent wrong alphabet: on easycaptcha it
read `kd9jT` as `KDTTV` at confidence 1.00 and its estimate rose from 0.009 to 0.934 (docs/studies/adapt.md).
A person reading the sheet sees it in seconds. The readings come from `compare --out` (each model's
"readings", in the order of "images"); a comparison saved before compare kept them has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from captchagen.preview import Caption, write_grid

SHEET_IMAGES = 24  # pool images on the sheet
SHEET_COLUMNS = 4
# Where the alphabet holds both cases of a letter, a site drawing both shows about half of them as capitals
# (kaptcha: 51%; base-v3 read 53% of its letters as capitals). One drawing a single shape for both cases does
# not: base-v3 read 81% of easycaptcha's as capitals, its fine-tune 93%. Beyond this far from half, adapt
# says so (--case ignore is then how the site must check, and how adapt should read and learn).
ONE_CASE = 0.25
CASE_LETTERS = 100  # fewer readings of two-case letters than this tell nothing


@dataclass(frozen=True)
class Readings:
    """The images a comparison read (paths as compare listed them) and each model's readings of them."""

    images: tuple[str, ...]
    by_model: dict[str, tuple[str, ...]]


def read_readings(compared: Path) -> Readings | None:
    """The readings in a comparison's estimates.json; None where it kept none (made before compare kept
    them), or they do not line up with its images."""
    try:
        data = json.loads(compared.read_text("utf-8"))
        images = tuple(str(p) for p in data["images"])
        by_model = {str(m["model"]): tuple(str(t) for t in m["readings"]) for m in data["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if any(len(texts) != len(images) for texts in by_model.values()):
        return None
    return Readings(images, by_model)


def capital_share(texts: tuple[str, ...], alphabet: str) -> tuple[float, int] | None:
    """The share of capitals among the readings' letters whose two cases are both in `alphabet`, and how many
    such letters were read; None where the alphabet holds no letter in both cases."""
    both = {c for c in alphabet if c.isalpha() and c.upper() in alphabet and c.lower() in alphabet}
    if not both:
        return None
    letters = [c for t in texts for c in t if c in both]
    return (sum(c.isupper() for c in letters) / len(letters) if letters else 0.5), len(letters)


def case_note(texts: tuple[str, ...], alphabet: str, model: str) -> str | None:
    """A one-line note where `model`'s readings keep to one case of letters the alphabet has in both: the
    site likely draws one shape for both cases, which no model can read apart."""
    found = capital_share(texts, alphabet)
    if found is None or found[1] < CASE_LETTERS or abs(found[0] - 0.5) < ONE_CASE:
        return None
    share, letters = found
    which, part = ("capitals", share) if share >= 0.5 else ("small letters", 1 - share)
    return (f"note: {part:.0%} of the {letters:,} letters {model} read in the pool are {which}, where the alphabet "
            "holds both cases (a site drawing both shows about half of each): if the site draws one shape for "
            "both cases, no model can tell them apart, and the site must ignore case; then give --case ignore, "
            "which reads and learns as it checks")  # fmt: skip


def write_sheet(readings: Readings, rows: list[tuple[str, str]], out: Path, count: int = SHEET_IMAGES) -> Path | None:
    """A sheet of the first `count` readable images, each with one caption line per (name, model) of `rows`:
    the name and what that model read (the first row in dark blue, the others grey). None where no image
    could be opened."""
    cells: list[tuple[Path | Image.Image, Caption]] = []
    for i, path in enumerate(readings.images):
        if len(cells) == count:
            break
        try:
            with Image.open(path) as im:
                im.load()
                image = im.copy()
        except (OSError, UnidentifiedImageError):
            continue
        caption = [(f"{name}: {readings.by_model[model][i] or '-'}", "darkblue" if k == 0 else "dimgray")
                   for k, (name, model) in enumerate(rows)]  # fmt: skip
        cells.append((image, caption))
    if not cells:
        return None
    return write_grid(cells, out, columns=SHEET_COLUMNS)
