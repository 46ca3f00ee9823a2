"""A style tuned by eye against a pool (`captchagen tune-style`): what the style page shows and what it saves.

The page sends the whole style and the fonts with every request, so the server keeps nothing between them
but the pool: each look is the same labels and draws rendered in the style sent (a change of a knob moves
the images and the distance by that knob alone), and a save writes exactly what the page shows. Fonts are
named by their place in the candidate list, never by a path from a request.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from captchagen import atomic
from captchagen.errors import BadInput
from captchagen.fitting.features import distance, group_distances, summarise
from captchagen.fitting.pool_fit import STYLE_FILE, Pool, pool_images, read_record, style_toml
from captchagen.fitting.search import Settings, render
from captchagen.fonts import load_font
from captchagen.preview import png_bytes, write_grid
from captchagen.style import DEFAULT, FIELDS, Style, field_table, from_dict, load

RECORD, SHEET, FONTS = "tune.json", "sheet.png", "fonts"
RECORD_VERSION = 1
LOOK = 24  # images a look renders: the distance is taken over them, the page shows the first SHOWN
SHOWN = 12
START_FONTS = 8  # fonts chosen at the start when it names none: a seeded sample of the candidates
PER_IMAGE = ("randomize", "readable", "wider")  # draw a new style per image: not a look one tunes


@dataclass(frozen=True)
class Start:
    style: Style
    fonts: tuple[str, ...]  # font files
    source: str  # what it came from, in words


def open_start(spec: str | None, candidates: Sequence[str], seed: int) -> Start:
    """The style and fonts the page starts from: a `fit-style` output folder (its style.toml and the fonts
    its fit.json chose), a style file or preset (in a seeded sample of the candidate fonts), or the default
    style. A fitted font that changed since the fit is refused: its record no longer says what was fitted."""
    sampled = tuple(random.Random(seed).sample(list(candidates), min(START_FONTS, len(candidates))))
    if spec is None:
        return Start(DEFAULT, sampled, "the default style")
    folder = Path(spec)
    if folder.is_dir():
        record = read_record(folder)
        if record is None or not (folder / STYLE_FILE).is_file():
            raise BadInput(f"--start {folder} is not a fit-style output folder (no fit.json and style.toml)",
                           param="start")  # fmt: skip
        for f in record.fonts:
            if not Path(f.path).is_file() or load_font(f.path).sha256 != f.sha256:
                raise BadInput(f"--start {folder}: the fitted font {f.path} is gone or changed since the fit; "
                               "fit again, or start from its style.toml", param="start")  # fmt: skip
        return Start(load(str(folder / STYLE_FILE))[1], tuple(f.path for f in record.fonts), f"the fit in {folder}")
    name, style = load(spec)
    if style.randomize:
        raise BadInput(f"--start {spec} draws a new style for every image, not one look to tune; start from a "
                       "fit, a style file or a fixed preset", param="start")  # fmt: skip
    return Start(style, sampled, f"the style {name}")


@dataclass(frozen=True)
class Look:
    images: list[Image.Image]
    distance: float
    groups: dict[str, float]


class Tuner:
    """The pool's summary, the candidate fonts, and the style page's three acts: check, look, save."""

    def __init__(
        self,
        pool: Pool,
        settings: Settings,
        candidates: Sequence[str],
        start: Start,
        kinds: dict[str, str] | None = None,
    ) -> None:
        self.pool, self.settings, self.start = pool, settings, start
        # The start's fonts are offered even where they are not among the candidates (a fit's own pack).
        self.fonts = list(dict.fromkeys([*start.fonts, *candidates]))
        # What the page shows and the search matches: the file name (with its folder where two files share
        # a name), the family, and the kind a font pack files it under (`serif`, `mono`, ...).
        named = Counter(Path(f).name for f in self.fonts)
        self.names = [Path(f).name if named[Path(f).name] == 1 else f"{Path(f).parent.name}/{Path(f).name}"
                      for f in self.fonts]  # fmt: skip
        kinds = kinds or {}
        self.about = [" · ".join(filter(None, (_family(f), kinds.get(str(Path(f).resolve()))))) for f in self.fonts]
        self.images = pool_images(pool)
        self.target = summarise(self.images)
        half = len(self.images) // 2
        self.floor = distance(summarise(self.images[:half]), summarise(self.images[half:]))
        self._previews: dict[int, bytes] = {}

    def fields(self) -> list[dict[str, Any]]:
        """Every style field as the page draws its control: name, kind, range, choices, what it does."""
        holds = {row[0]: row[1] for row in field_table()}
        out = []
        for name, f in FIELDS.items():
            if name in PER_IMAGE:
                continue
            lo, hi = f.metadata["range"]
            wide = f.metadata["wide"]  # how `random` draws it: a slider's usual span, for a number
            usual = list(wide) if f.metadata["kind"] in ("number", "count") and isinstance(wide, tuple) else None
            out.append({"name": name, "kind": f.metadata["kind"], "lo": lo, "hi": hi, "usual": usual,
                        "choices": list(f.metadata["choices"]), "holds": holds[name]})  # fmt: skip
        return out

    def values(self, style: Style) -> dict[str, Any]:
        return {f["name"]: _plain(getattr(style, f["name"])) for f in self.fields()}

    def check(self, values: Any, fonts: Any) -> tuple[Style, tuple[str, ...]]:
        """The style and fonts a request names; BadInput naming the first bad field or font."""
        if not isinstance(values, dict):
            raise BadInput("`style` must be a table of settings")
        if not isinstance(fonts, list) or not fonts:
            raise BadInput("choose at least one font")
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(self.fonts) for i in fonts):
            raise BadInput(f"`fonts` must be numbers of candidate fonts, 0 to {len(self.fonts) - 1}")
        if any(name in values for name in PER_IMAGE):
            raise BadInput("randomize, readable and wider draw a new style per image: not a look to tune")
        style = from_dict(values)
        return style, tuple(self.fonts[i] for i in dict.fromkeys(fonts))

    def look(self, style: Style, fonts: Sequence[str], seed: int) -> Look:
        """LOOK captchas in `style` (the same labels and draws for a seed, whatever the style) and how far
        they are from the pool."""
        images = render(style, fonts, self.settings, seed, LOOK)
        summary = summarise(images)
        return Look(images, distance(self.target, summary), group_distances(self.target, summary))

    def font(self, i: int) -> dict[str, Any]:
        return {"id": i, "name": self.names[i], "about": self.about[i]}

    def font_list(self, query: str, limit: int = 60) -> tuple[list[dict[str, Any]], int]:
        """Candidate fonts whose name, family or kind holds every word of `query` (any case): up to `limit`
        of them, and how many matched."""
        words = query.lower().split()
        found = [i for i in range(len(self.fonts))
                 if all(w in f"{self.names[i]} {self.about[i]}".lower() for w in words)]  # fmt: skip
        return [self.font(i) for i in found[:limit]], len(found)

    def font_preview(self, i: int) -> bytes:
        """A PNG of a few of the alphabet's characters in font `i` (IndexError when there is none)."""
        if i < 0:
            raise IndexError(i)
        path = self.fonts[i]
        if i not in self._previews:
            chars = self.settings.alphabet
            text = "".join(chars[(k * 7) % len(chars)] for k in range(6))
            im = Image.new("RGB", (180, 44), "white")
            ImageDraw.Draw(im).text((6, 4), text, fill="black", font=ImageFont.truetype(path, 32))
            self._previews[i] = png_bytes(im)
        return self._previews[i]

    def save(self, out: Path, style: Style, fonts: Sequence[str], seed: int) -> dict[str, Any]:
        """Write out/style.toml, the fonts into out/fonts/, out/sheet.png (pool above, tuned below) and
        out/tune.json, each atomically, the record last: what `make --style` and `adapt --style` take."""
        look = self.look(style, fonts, seed)
        saved = check_out(out)
        (out / FONTS).mkdir(parents=True, exist_ok=True)
        names: dict[str, str] = {}
        for path in fonts:
            info = load_font(path)
            name = Path(path).name if Path(path).name not in names.values() else f"{info.sha256[:8]}-{Path(path).name}"
            names[path] = name
            if saved.get(name) != info.sha256:
                atomic.write_bytes(out / FONTS / name, Path(path).read_bytes())
        for name in set(saved) - set(names.values()):  # fonts this page saved before, no longer chosen
            (out / FONTS / name).unlink(missing_ok=True)
        text = style_toml(style).replace("Fitted by `captchagen fit-style`", "Tuned on `captchagen tune-style`")
        atomic.write_bytes(out / STYLE_FILE, text.encode())
        cells = [(im, [("pool", "black")]) for im in self.images[:8]]
        cells += [(im, [("tuned", "blue")]) for im in look.images[:8]]
        write_grid(cells, out / SHEET, columns=8)
        record = {
            "version": RECORD_VERSION,
            "pool": {"images": self.pool.total, "sampled": len(self.pool.paths), "digest": self.pool.digest()},
            "size": list(self.pool.size),
            "alphabet": self.settings.alphabet,
            "length": [self.settings.min_len, self.settings.max_len],
            "start": self.start.source,
            "fonts": [{"file": names[p], "from": str(p), "sha256": load_font(p).sha256} for p in fonts],
            "distance": look.distance,
            "floor": self.floor,
            "groups": look.groups,
            "seed": seed,
            "style": style.to_dict(),
        }
        atomic.write_json(out / RECORD, record)
        return record


def check_out(out: Path) -> dict[str, str]:
    """What a save may replace in `out`, checked: BadInput when it holds a style.toml or sheet.png with no
    tune.json beside it (a fit's folder, or the user's own files), or a font no save put in out/fonts/.
    The fonts a save left there, as saved_fonts gives them."""
    if not (out / RECORD).is_file():
        for name in (STYLE_FILE, SHEET):
            if (out / name).exists():
                raise BadInput(f"{out} holds a {name} that tune-style did not write; choose another --out",
                               param="out")  # fmt: skip
    return saved_fonts(out)


def saved_fonts(out: Path) -> dict[str, str]:
    """{file name: sha256} of the fonts a save left in out/fonts/ (from out/tune.json); BadInput when that
    folder holds a file no save put there, which `--font OUT/fonts` would otherwise draw with."""
    folder = out / FONTS
    try:
        record = json.loads((out / RECORD).read_text())
        listed = {f["file"]: f["sha256"] for f in record["fonts"]}
    except (OSError, ValueError, KeyError, TypeError):
        listed = {}
    present = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    strangers = [name for name in present if name not in listed]
    if strangers:
        raise BadInput(f"{folder} holds {strangers[0]}, which tune-style did not save there; choose another --out",
                       param="out")  # fmt: skip
    # What is there now, not what the record says: a font edited in place is written again.
    return {name: load_font(folder / name).sha256 for name in listed if name in present}


def _family(path: str) -> str:
    """The font's family and style as it names them ("Open Sans Bold"), or "" when it names none."""
    try:
        return " ".join(dict.fromkeys(filter(None, ImageFont.truetype(path, 12).getname())))
    except OSError:
        return ""


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
