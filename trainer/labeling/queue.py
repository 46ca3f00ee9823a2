"""The labelling queue behind `captchagen label`: which image comes next, and each answer as a labelled file.

Images come from a pool folder (any names). An answer writes `<id>_<label>.<ext>` into the output folder,
atomically: a copy of the image's bytes, or with `move` the image itself, renamed. The folder is then a
labelled set that `train` reads as it is. `<id>` is the image's file name without its suffix, with `_`
written `-` (a label starts at the first `_`). An image whose id is in the output folder already counts as
labelled, so a session can stop and go on another day.

With a model, every image still to label is read first and offered least sure first (active learning: the
images whose labels teach the model most), its reading filled in. Without one, in name order, blank.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from captchagen import atomic, codec, unlabeled
from captchagen.alphabet import Alphabet
from captchagen.errors import BadInput

MAX_LABEL = 64  # characters in one answer


def _is_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception:  # PIL raises many kinds for a file that is not an image
        return False
    return True


@dataclass
class Item:
    key: int  # its place in the queue: what the page sends back (never a path)
    path: Path
    id: str
    reading: str = ""  # the model's reading, or "" without a model
    confidence: float | None = None  # the model's whole-string confidence in it


def image_suffix(path: Path) -> str:
    """The image suffix a pool file's name ends in (`.png` for `.png` itself, which Path calls a stem)."""
    return next(s for s in codec.IMAGE_SUFFIXES if path.name.lower().endswith(s))


def image_id(path: Path) -> str:
    """The id of a pool image in labelled file names: its name less the suffix, `_` written `-` (a name
    that is only a suffix, such as `.png`, is `unnamed`)."""
    return path.name[: -len(image_suffix(path))].replace("_", "-") or "unnamed"


def labelled_ids(out: Path) -> set[str]:
    """The ids already labelled in `out` (the part of each image's name before its first `_`)."""
    if not out.is_dir():
        return set()
    ids = set()
    for p in codec.image_files(out):
        with contextlib.suppress(BadInput):
            ids.add(codec.parse_name(p.name).stem)
    return ids


def order(reader, paths: list[str], progress: Callable[[int, int], None] | None = None) -> list[tuple[str, str, float]]:
    """(path, reading, confidence) of each readable image, least sure first: the active-learning order.
    Images that cannot be read are left out."""
    read = []
    for start in range(0, len(paths), 256):
        read += [p for p in reader.read_paths(paths[start : start + 256]) if p.error is None]
        if progress:
            progress(min(start + 256, len(paths)), len(paths))
    ranked = sorted(read, key=lambda p: (p.confidence, p.path))
    return [(p.path, p.text, p.confidence) for p in ranked]


def check_folders(pool: Path, out: Path) -> None:
    """BadInput unless `pool` is a folder and `out` a folder (or nothing yet) beside it: not the pool itself,
    and not inside it, where `train --unlabeled POOL` would learn the labelled (or held-out) images too."""
    if not pool.is_dir():
        raise BadInput(f"{pool} is not a folder of images to label")
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file; give a folder for the labelled images")
    unlabeled.check_apart(pool, out)  # the labelled (or held-out) images would be learnt as the pool's


class LabelQueue:
    """The images of `pool` not yet labelled in `out`, in the order to label them. Thread-safe."""

    def __init__(
        self,
        pool: Path,
        out: Path,
        *,
        reader=None,  # trainer.inference.reader.Reader, or None
        alphabet: str | None = None,  # answers must be drawn from it, when given
        move: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        pool, out = Path(pool), Path(out)
        check_folders(pool, out)
        if alphabet is not None and not alphabet:
            raise BadInput("--alphabet is empty: give a preset or the characters the answers may use")
        self.pool, self.out, self.move = pool, out, move
        self.alphabet = Alphabet.from_spec(alphabet) if alphabet else None
        self.model = getattr(reader, "name", None)
        have = labelled_ids(out)
        # The pool rule fit-style, adapt and train share: nothing a link leads to outside the pool (a link to
        # /etc/passwd would be served and copied), no made dataset's preview; OUT is never inside it.
        ids = {p: image_id(p) for p in unlabeled.list_images(pool).paths}
        self.already = len(have)  # labelled in OUT: after --move those images are no longer in the pool
        files = [p for p, i in ids.items() if i not in have]
        counts = Counter(ids[p] for p in files)
        clash = next((i for i, n in counts.items() if n > 1), None)
        if clash is not None:
            raise BadInput(f"{counts[clash]} images in {pool} would be labelled as {clash!r}; rename one")
        if reader is not None:
            ranked = order(reader, [str(p) for p in files], progress)
            self.unreadable = len(files) - len(ranked)
            self.items = [Item(k, Path(p), ids[Path(p)], text, conf) for k, (p, text, conf) in enumerate(ranked)]
        else:  # files that are not images are not offered (a model's reading leaves them out the same way)
            readable = [p for p in files if _is_image(p.read_bytes())]
            self.unreadable = len(files) - len(readable)
            self.items = [Item(k, p, ids[p]) for k, p in enumerate(readable)]
        self.pending = [item.key for item in self.items]  # in order; the next is the first not skipped
        self.skipped: set[int] = set()
        self.written: list[tuple[int, Path]] = []  # (key, file) of this session's answers, for undo
        self.shown: dict[int, float] = {}
        self.seconds: list[float] = []  # time from showing an image to its answer
        self.lock = threading.Lock()

    def item(self, key: int) -> Item:
        if not 0 <= key < len(self.items):
            raise KeyError(key)
        return self.items[key]

    def next(self) -> Item | None:
        """The next image to label, or None when every image is labelled. Skipped ones come back when only
        they are left."""
        with self.lock:
            return self._next()

    def _next(self) -> Item | None:
        if self.pending and all(k in self.skipped for k in self.pending):
            self.skipped.clear()
        key = next((k for k in self.pending if k not in self.skipped), None)
        if key is None:
            return None
        self.shown.setdefault(key, time.monotonic())
        return self.items[key]

    def answer(self, key: int, label: str) -> Path:
        """Write image `key` as labelled `label`; BadInput for a label it cannot have, KeyError for a key
        that is not waiting for one."""
        label = label.strip()
        if not label:
            raise BadInput("the label is empty; type the characters the image shows (Esc skips it)")
        odd = next((c for c in label if c.isspace() or not c.isprintable()), None)
        if odd is not None:  # train reads a label up to the first space: it would be refused there
            raise BadInput(f"the label holds {odd!r}: spaces and control characters cannot be in a label")
        if len(label) > MAX_LABEL:
            raise BadInput(f"the label is {len(label)} characters long; at most {MAX_LABEL}")
        if self.alphabet is not None:
            bad = next((c for c in label if c not in self.alphabet), None)
            if bad is not None:
                raise BadInput(f"{bad!r} is not in the alphabet {self.alphabet.chars!r} (--alphabet)")
        with self.lock:
            if key not in self.pending:
                raise KeyError(key)
            item = self.items[key]
            target = self.out / f"{item.id}_{codec.escape(label)}{image_suffix(item.path).lower()}"
            staged = atomic.temp_path(target).name  # the longer of the two names a write makes
            if len(staged.encode()) > codec.MAX_NAME_BYTES:
                raise BadInput(f"the file name {target.name[:40]}... would be over {codec.MAX_NAME_BYTES} bytes")
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                self._write(item, target)
            except OSError as e:  # a pool image deleted meanwhile, a read-only pool or OUT, a full disk
                raise BadInput(f"cannot write {target.name}: {e.strerror or e} ({e.filename or item.path})") from None
            self.pending.remove(key)
            self.skipped.discard(key)
            self.written.append((key, target))
            started = self.shown.pop(key, None)
            if started is not None:
                self.seconds.append(time.monotonic() - started)
            return target

    def _write(self, item: Item, target: Path) -> None:
        """The labelled file: a copy, or with `move` the image itself (a rename, or across file systems a copy
        and then the pool's file removed). Only images: a file that is not one stays in the pool."""
        data = item.path.read_bytes()
        if not _is_image(data):
            raise OSError(errno.EINVAL, "not an image", str(item.path))
        if not self.move:
            atomic.write_bytes(target, data)
            return
        _move(item.path, target)  # the pool no longer holds it

    def skip(self, key: int) -> None:
        with self.lock:
            if key not in self.pending:
                raise KeyError(key)
            self.skipped.add(key)
            self.shown.pop(key, None)

    def undo(self) -> Item | None:
        """Take back this session's last answer: its file goes (back to the pool, with `move`), and the image
        is next again. None when there is nothing to undo."""
        with self.lock:
            if not self.written:
                return None
            key, target = self.written[-1]
            item = self.items[key]
            try:
                if self.move:
                    _move(target, item.path)
                else:
                    target.unlink(missing_ok=True)
            except FileNotFoundError:  # moved, then deleted from OUT meanwhile: the image is nowhere now
                self.written.pop()
                raise BadInput(f"{target.name} was deleted meanwhile; the image cannot go back to the pool") from None
            except OSError as e:  # a read-only pool or OUT: the answer stands
                raise BadInput(f"cannot take back {target.name}: {e.strerror or e}") from None
            self.written.pop()
            self.pending.insert(0, key)
            self.shown.pop(key, None)
            return item

    def stats(self) -> dict:
        with self.lock:
            recent = self.seconds[-20:]
            per_label = sum(recent) / len(recent) if recent else None
            remaining = len(self.pending)
            return {
                "labelled": self.already + len(self.written),
                "this_session": len(self.written),
                "remaining": remaining,
                "skipped": len(self.skipped),
                "seconds_per_label": per_label,
                "seconds_left": per_label * remaining if per_label is not None else None,
                "order": "least sure first" if self.model else "by name",
                "model": self.model,
                "out": str(self.out),
                "move": self.move,
            }


def _move(source: Path, target: Path) -> None:
    """A rename (atomic); across file systems (EXDEV) an atomic copy, then the source removed."""
    try:
        os.replace(source, target)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        atomic.write_bytes(target, source.read_bytes())
        source.unlink()
