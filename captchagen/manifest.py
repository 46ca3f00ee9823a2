"""The dataset's on-disk format: manifest.json, shard folders with their shard.json, hashes and checks."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from PIL import features

import captchagen
from captchagen import codec, style
from captchagen.errors import CaptchagenError, check_format

FORMAT = "captchagen-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_RECORD = "shard.json"
PREVIEW = "preview.png"
PARTIAL_SUFFIX = ".partial"


def shard_dir(index: int) -> str:
    return f"shard-{index:05d}"


def renderer_versions() -> dict[str, str]:
    """Versions of what draws and encodes the pixels: another version may give other bytes."""
    return {
        "captcha": version("captcha"),
        "pillow": version("pillow"),
        "freetype": str(features.version("freetype2")),
        "zlib": str(features.version("zlib")),
    }


def environment() -> dict[str, str]:
    return {"captchagen": captchagen.__version__, "python": platform.python_version(), **renderer_versions()}


def fingerprint(settings: dict, renderer: dict[str, str]) -> str:
    """Hash of everything that decides the bytes; shards made under the same fingerprint fit together.

    The default style is left out, so datasets made before styles existed keep their fingerprint."""
    if settings.get("style") == style.DEFAULT.to_dict():
        settings = {k: v for k, v in settings.items() if k != "style"}
    blob = json.dumps({"settings": settings, "renderer": renderer}, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def shard_digest(entries: Iterable[tuple[str, str]]) -> str:
    """Content hash of a shard from its (file name, file sha256) pairs in index order."""
    h = hashlib.sha256()
    for name, digest in entries:
        h.update(f"{name}\t{digest}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class ShardRecord:
    """What shard.json says of a complete shard; its presence marks the shard complete."""

    index: int
    dir: str
    first: int
    count: int
    sha256: str
    fingerprint: str

    @classmethod
    def read(cls, folder: Path) -> ShardRecord | None:
        """The record in `folder`, or None if it has none or an unreadable one."""
        try:
            data = json.loads((folder / SHARD_RECORD).read_text("utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            return None


def build(settings: dict, records: list[ShardRecord], num_shards: int) -> dict:
    """The manifest for the shards that are complete so far."""
    records = sorted(records, key=lambda r: r.index)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "complete": len(records) == num_shards,
        "settings": settings,
        "environment": environment(),
        "fingerprint": fingerprint(settings, renderer_versions()),
        "codec": {
            "name": codec.NAME,
            "pattern": "<index>_<escaped label>.png",
            "escape": 'characters other than printable ASCII, and % / \\ : * ? " < > |, as %XX per UTF-8 byte',
        },
        "num_shards": num_shards,
        "images": sum(r.count for r in records),
        "shards": [{k: v for k, v in asdict(r).items() if k != "fingerprint"} for r in records],
    }


def read(folder: Path) -> dict:
    """Load and check the manifest of the dataset in `folder`."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise CaptchagenError(f"{folder} has no {MANIFEST}: it is not a captchagen dataset") from None
    except (OSError, ValueError) as e:
        raise CaptchagenError(f"cannot read {path}: {e}") from None
    check_format(data, path, FORMAT, FORMAT_VERSION, "captchagen dataset manifest")
    return data


def first_difference(old: dict, new: dict, prefix: str = "") -> str | None:
    """The dotted name of the first setting that differs, or None."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} ({_short(a)} there, {_short(b)} now)"
    return None


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class VerifyReport:
    images: int
    shards: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(folder: Path) -> VerifyReport:
    """Re-hash every shard and check its count, its file names and labels against the manifest."""
    from captchagen.alphabet import Alphabet

    data = read(folder)
    settings = data["settings"]
    alphabet = Alphabet(settings["alphabet"])
    problems: list[str] = []
    if not data["complete"]:
        problems.append(f"only {len(data['shards'])} of {data['num_shards']} shards are complete")
    images = 0
    for shard in data["shards"]:
        path = folder / shard["dir"]
        if not path.is_dir():
            problems.append(f"{shard['dir']} is missing")
            continue
        names = sorted(p.name for p in path.iterdir() if p.suffix == ".png")
        expected = range(shard["first"], shard["first"] + shard["count"])
        entries = []
        for name in names:
            try:
                parsed = codec.parse_name(name)
                alphabet.check(parsed.label, where=f"{shard['dir']}/{name}: label")
                if not settings["min_len"] <= len(parsed.label) <= settings["max_len"]:
                    raise CaptchagenError(f"{shard['dir']}/{name}: label length {len(parsed.label)} is out of range")
                if not parsed.stem.isdigit() or int(parsed.stem) not in expected:
                    raise CaptchagenError(f"{shard['dir']}/{name}: index is not in this shard")
            except CaptchagenError as e:
                problems.append(str(e))
            entries.append((name, file_digest((path / name).read_bytes())))
        images += len(names)
        if len(names) != shard["count"]:
            problems.append(f"{shard['dir']} has {len(names)} images, the manifest says {shard['count']}")
        elif shard_digest(entries) != shard["sha256"]:
            problems.append(f"{shard['dir']} content hash differs from the manifest")
    return VerifyReport(images=images, shards=len(data["shards"]), problems=problems)
