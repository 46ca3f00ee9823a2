"""Which images two sets share: the same file (by resolved path) or a copy of it (same name and bytes).

Made datasets and labelled folders put the label in each file name, so a copy of a dataset (`cp -r`) keeps
every name: comparing names first, then sizes, then SHA-256 of the bytes finds copies while reading only
the few files whose names coincide. An unlabelled pool names its images as it likes (and `captchagen label`
copies images out of it under new names), so `Copies` finds copies under any name: sizes first, then bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class _Digests:
    """The SHA-256 of the set's own images, each read once, when first asked."""

    def __init__(self) -> None:
        self._digests: dict[Path, str | None] = {}

    def _digest(self, path: Path) -> str | None:
        if path not in self._digests:
            self._digests[path] = _sha256(path)
        return self._digests[path]


class HeldOut(_Digests):
    """The validation images, asked one training image at a time whether it is one of them."""

    def __init__(self, paths: Iterable[str | Path]) -> None:
        super().__init__()
        self.resolved: set[str] = set()
        self.by_name: dict[str, list[Path]] = {}
        for p in paths:
            p = Path(p)
            self.resolved.add(os.path.realpath(p))
            self.by_name.setdefault(p.name, []).append(p)

    def holds(self, path: str | Path) -> bool:
        """True when `path` is a validation image, or a byte-for-byte copy of one under the same name."""
        path = Path(path)
        if os.path.realpath(path) in self.resolved:
            return True
        twins = self.by_name.get(path.name)
        if not twins:
            return False
        try:
            size = path.stat().st_size
        except OSError:
            return False
        same_size = [t for t in twins if t.exists() and t.stat().st_size == size]
        return bool(same_size) and _sha256(path) in {self._digest(t) for t in same_size}


class Copies(_Digests):
    """A set of images, asked one image at a time whether it is one of them or a copy of one under any name."""

    def __init__(self, paths: Iterable[str | Path]) -> None:
        super().__init__()
        self.resolved: set[str] = set()
        self.by_size: dict[int, list[Path]] = {}
        for p in paths:
            p = Path(p)
            self.resolved.add(os.path.realpath(p))
            try:
                self.by_size.setdefault(p.stat().st_size, []).append(p)
            except OSError:
                continue

    def holds(self, path: str | Path) -> bool:
        path = Path(path)
        if os.path.realpath(path) in self.resolved:
            return True
        try:
            twins = self.by_size.get(path.stat().st_size, [])
        except OSError:
            return False
        return bool(twins) and _sha256(path) in {self._digest(t) for t in twins}
