"""`make`: render a dataset into shard folders, in parallel, resumably, and byte for byte reproducibly.

Each shard is written into `shard-NNNNN.partial/`, one atomic file at a time; when every image is there,
its `shard.json` (count, content hash, settings fingerprint) is written and the folder is renamed to
`shard-NNNNN/`. A folder with that name is therefore always complete, and a run that was interrupted,
even by SIGKILL, is finished by running the same command again: complete shards are kept, and images
already in a partial shard are kept too, since each image depends only on the settings and its index.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from captchagen import atomic, codec, manifest
from captchagen.atomic import DISK_FULL
from captchagen.config import GenerationConfig, Resolved, resolve
from captchagen.errors import BadInput, CaptchagenError
from captchagen.lock import LOCK_NAME, FolderLock
from captchagen.manifest import ShardRecord
from captchagen.render import Renderer
from captchagen.workers import WorkerPool, cpu_count

CHUNK = 64  # images per task: small enough for a smooth progress bar, large enough to amortise IPC
_OURS = re.compile(r"shard-\d{5,}(\.partial)?|manifest\.json|preview\.png|\..*\.tmp|" + re.escape(LOCK_NAME))

Progress = Callable[[int, int], None]  # (images done, images in the selected shards)
Task = tuple[int, int, int]  # (shard, first index, stop index)


@dataclass(frozen=True)
class MakeResult:
    out: Path
    settings: dict
    shards_selected: int
    shards_made: int
    shards_kept: int
    images_selected: int
    images_rendered: int
    complete: bool
    seconds: float  # the whole call: checks, rendering, manifest and preview
    preview: Path | None
    render_seconds: float = 0.0  # rendering alone (worker start-up included): what img/s is measured over
    notes: tuple[str, ...] = ()  # one line each: what is worth knowing and is not an error (fonts left out)


def parse_shards(spec: str, num_shards: int) -> range:
    """`START:STOP` in Python slice style (negative counts from the end; either side may be empty) or `N`."""
    parts = spec.split(":")
    try:
        if len(parts) == 1:
            i = int(parts[0])
            bounds = slice(i, i + 1 if i != -1 else None)
        elif len(parts) in (2, 3):
            bounds = slice(*(int(p) if p.strip() else None for p in parts))
        else:
            raise ValueError
    except ValueError:
        raise BadInput(f"`shards` {spec!r} is not START:STOP (for example 3:7)", param="shards") from None
    try:
        selected = range(num_shards)[bounds]
    except ValueError as e:  # a zero step
        raise BadInput(f"`shards` {spec!r}: {e}", param="shards") from None
    if len(selected) == 0:
        raise BadInput(f"`shards` {spec!r} selects none of the dataset's {num_shards} shards", param="shards")
    return selected


def make_dataset(
    config: GenerationConfig,
    out: Path,
    *,
    shards: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    preview: bool = True,
    progress: Progress | None = None,
) -> MakeResult:
    """Render the shards that `shards` selects (START:STOP, default all) into `out`.

    Every setting is checked before anything is written. Only one process at a time writes a folder: a
    second gets FolderBusy. A write that fails (the disk is full) is one CaptchagenError saying how to
    resume; what was written stays valid.
    """
    started = time.perf_counter()
    resolved = resolve(config)
    selected = range(config.num_shards) if shards is None else parse_shards(shards, config.num_shards)
    _check_out(out)
    trial_render(resolved)
    lock = FolderLock(out, "make")
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except OSError as e:
        raise BadInput(f"cannot write to `out` {out}: {e.strerror or e}", param="out") from None
    try:
        return _make_locked(config, resolved, out, selected, overwrite, preview, progress, workers, started)
    except OSError as e:
        if e.errno in DISK_FULL:
            raise CaptchagenError(
                f"the disk is full: no space left to write in {out}; the images made so far are kept, "
                "so free some space and run the same command again to finish"
            ) from None
        if e.errno is None:
            raise
        raise CaptchagenError(f"cannot write in {out}: {e.strerror} ({e.filename or out})") from None
    finally:
        lock.release()


def trial_render(resolved: Resolved) -> None:
    """Draw one image of the longest label before anything is written, so settings that cannot be drawn
    (a style that Pillow refuses at this size) fail in one line with nothing on disk."""
    c = resolved.config
    chars = resolved.alphabet.chars
    label = (chars * c.max_len)[: c.max_len]
    try:
        Renderer(resolved).render(random.Random(0), label)
    except (ValueError, OSError, MemoryError, ZeroDivisionError, IndexError) as e:
        raise BadInput(
            f"the style cannot be drawn at {c.width}x{c.height} with {c.max_len} characters: {e}", param="style"
        ) from None


def _make_locked(
    config: GenerationConfig,
    resolved: Resolved,
    out: Path,
    selected: range,
    overwrite: bool,
    preview: bool,
    progress: Progress | None,
    workers: int | None,
    started: float,
) -> MakeResult:
    settings = resolved.identity()
    fingerprint = manifest.fingerprint(settings, manifest.renderer_versions())
    kept = _prepare_out(out, settings, fingerprint, config, overwrite)
    pending = [s for s in selected if s not in kept]
    total = sum(len(config.shard_range(s)) for s in selected)
    pending_images = sum(len(config.shard_range(s)) for s in pending)
    done = total - pending_images
    if progress:
        progress(done, total)

    records = dict(kept)

    def write_manifest() -> None:
        atomic.write_json(out / manifest.MANIFEST, manifest.build(settings, list(records.values()), config.num_shards))

    rendered = 0
    render_started = time.perf_counter()
    workers = max(1, min(workers or cpu_count(), pending_images // CHUNK + 1))
    chunks_left = {s: len(range(0, len(config.shard_range(s)), CHUNK)) for s in pending}
    results: dict[int, list[tuple[int, list[tuple[str, str, bool]]]]] = {s: [] for s in pending}
    for (shard, first, _), entries in _execute(resolved, out, _tasks(config, pending), workers):
        results[shard].append((first, entries))
        rendered += sum(made for _, _, made in entries)
        done += len(entries)
        chunks_left[shard] -= 1
        if chunks_left[shard] == 0:
            records[shard] = _finish_shard(out, shard, config, fingerprint, results.pop(shard))
            write_manifest()
        if progress:
            progress(done, total)

    render_seconds = time.perf_counter() - render_started
    write_manifest()
    preview_path = None
    if preview:
        from captchagen.preview import write_preview

        preview_path = write_preview(out, out / manifest.PREVIEW)
    return MakeResult(
        out=out,
        settings=settings,
        shards_selected=len(selected),
        shards_made=len(pending),
        shards_kept=len(selected) - len(pending),
        images_selected=total,
        images_rendered=rendered,
        complete=len(records) == config.num_shards,
        seconds=time.perf_counter() - started,
        preview=preview_path,
        render_seconds=render_seconds,
        notes=left_out_note(resolved),
    )


def left_out_note(resolved: Resolved) -> tuple[str, ...]:
    """One line on the fonts of a pack left out for this alphabet, or none."""
    if not resolved.left_out:
        return ()
    kept = len(resolved.fonts)
    shown = "; ".join(resolved.left_out[:3]) + ("; ..." if len(resolved.left_out) > 3 else "")
    return (
        f"font pack {resolved.config.font_pack}: {len(resolved.left_out)} font(s) left out, as they cannot draw "
        f"this alphabet ({shown}); drawing with {kept}",
    )


def _prepare_out(
    out: Path, settings: dict, fingerprint: str, config: GenerationConfig, overwrite: bool
) -> dict[int, ShardRecord]:
    """Check `out` (locked by this process) against the settings, clear it if asked, and return the complete
    shards it holds."""
    if (out / manifest.MANIFEST).exists():
        try:
            old = manifest.read(out)
        except CaptchagenError as e:
            raise BadInput(f"`out` {out}: {e}", param="out") from None
        if old.get("fingerprint") != fingerprint:
            if not overwrite:
                what = manifest.first_difference(
                    {"settings": old["settings"], "renderer": old["environment"]},
                    {"settings": settings, "renderer": manifest.environment()},
                )
                raise BadInput(
                    f"`out` {out} holds a dataset made with other settings ({what}); use `overwrite` to replace it",
                    param="out",
                )
            _clear(out, list(out.iterdir()))
    # A process killed while writing the manifest or preview leaves its temp file; this one holds the lock,
    # so no other writer is using them.
    atomic.remove_temp_files(out)
    atomic.write_json(out / manifest.MANIFEST, manifest.build(settings, [], config.num_shards))

    kept: dict[int, ShardRecord] = {}
    for entry in sorted(out.iterdir()):
        if not (
            entry.is_dir() and entry.name.startswith("shard-") and not entry.name.endswith(manifest.PARTIAL_SUFFIX)
        ):
            continue
        record = ShardRecord.read(entry)
        index = int(entry.name.removeprefix("shard-"))
        if record is None or record.fingerprint != fingerprint or record.index != index:
            if not overwrite:
                raise BadInput(
                    f"`out` {out}: {entry.name} is not a complete shard of this dataset; use `overwrite` to replace it",
                    param="out",
                )
            shutil.rmtree(entry)
            continue
        kept[index] = record
    return kept


def _check_out(out: Path) -> None:
    """Refuse a file, or a folder of other things, before anything is written there."""
    if out.exists() and not out.is_dir():
        raise BadInput(f"`out` {out} is a file, not a folder", param="out")
    if out.is_dir() and not (out / manifest.MANIFEST).exists():
        foreign = sorted(e.name for e in out.iterdir() if not _OURS.fullmatch(e.name))
        if foreign:
            raise BadInput(
                f"`out` {out} is not empty and holds no captchagen dataset (it has {foreign[0]!r})", param="out"
            )


def _clear(out: Path, entries: Iterable[Path]) -> None:
    """Remove what a dataset consists of, and nothing else (the lock stays: this process holds it)."""
    for entry in entries:
        if not _OURS.fullmatch(entry.name) or entry.name == LOCK_NAME:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _tasks(config: GenerationConfig, shards: list[int]) -> Iterator[Task]:
    for shard in shards:
        r = config.shard_range(shard)
        for first in range(r.start, r.stop, CHUNK):
            yield shard, first, min(first + CHUNK, r.stop)


def _partial_dir(out: Path, shard: int) -> Path:
    return out / (manifest.shard_dir(shard) + manifest.PARTIAL_SUFFIX)


def _finish_shard(out: Path, shard: int, config: GenerationConfig, fingerprint: str, chunks: list) -> ShardRecord:
    entries = [(name, digest) for _, chunk in sorted(chunks) for name, digest, _ in chunk]
    r = config.shard_range(shard)
    record = ShardRecord(
        index=shard,
        dir=manifest.shard_dir(shard),
        first=r.start,
        count=len(entries),
        sha256=manifest.shard_digest(entries),
        fingerprint=fingerprint,
    )
    partial = _partial_dir(out, shard)
    atomic.write_json(partial / manifest.SHARD_RECORD, record.__dict__)
    os.replace(partial, out / record.dir)
    return record


# ---- the work itself: in this process for one worker, else in a pool of spawned processes ----

_renderer: Renderer | None = None
_parent_pid: int | None = None


def _init_worker(resolved: Resolved) -> None:
    global _renderer, _parent_pid
    _parent_pid = os.getppid()
    _renderer = Renderer(resolved)  # already checked by the parent: no font parsing here


def _render_chunk(out: str, task: Task) -> list[tuple[str, str, bool]]:
    """Write the images of one task; return (file name, sha256, newly rendered) for each, in order."""
    assert _renderer is not None
    shard, first, stop = task
    folder = _partial_dir(Path(out), shard)
    width = _renderer.config.index_width
    entries = []
    for index in range(first, stop):
        if _parent_pid is not None and os.getppid() != _parent_pid:
            os._exit(1)  # the parent was killed: stop rather than keep writing into its dataset
        rng, label = _renderer.label(index)
        path = folder / codec.image_name(index, label, width)
        try:
            data = path.read_bytes()  # written by an interrupted run; complete, since writes are atomic
            made = False
        except FileNotFoundError:
            data = _renderer.render(rng, label)
            atomic.write_bytes(path, data)
            made = True
        entries.append((path.name, manifest.file_digest(data), made))
    return entries


def _with_partial_dirs(out: Path, tasks: Iterator[Task]) -> Iterator[Task]:
    """Create each shard's partial folder (clearing temp files of an interrupted run) before its first task."""
    ready: set[int] = set()
    for task in tasks:
        if task[0] not in ready:
            folder = _partial_dir(out, task[0])
            folder.mkdir(exist_ok=True)
            atomic.remove_temp_files(folder)
            ready.add(task[0])
        yield task


def _execute(resolved: Resolved, out: Path, tasks: Iterator[Task], workers: int) -> Iterator[tuple[Task, list]]:
    """Run the tasks, yielding (task, result) as each finishes. At most a few tasks are queued at once."""
    tasks = _with_partial_dirs(out, tasks)
    if workers == 1:
        global _renderer
        _renderer = Renderer(resolved)
        for task in tasks:
            yield task, _render_chunk(str(out), task)
        return
    with WorkerPool(workers, _init_worker, (resolved,)) as pool:  # the parent alone handles Ctrl-C
        inflight: dict[Future, Task] = {}
        for task in tasks:
            inflight[pool.submit(_render_chunk, str(out), task)] = task
            if len(inflight) >= workers * 3:
                for f in pool.wait_first(inflight):
                    yield inflight.pop(f), f.result()
        while inflight:
            for f in pool.wait_first(inflight):
                yield inflight.pop(f), f.result()
