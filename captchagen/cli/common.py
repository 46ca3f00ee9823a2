"""Helpers shared by the CLI commands: library errors become one-line click errors."""

from __future__ import annotations

import contextlib
import functools
import glob
import math
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from captchagen import codec
from captchagen.cli.options import MEANINGS, OLD_NAMES, UsageFailure
from captchagen.errors import BadInput, CaptchagenError
from captchagen.outfolder import write_failure
from trainer.inference.lengths import LengthChoice


def library_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one-line click errors: bad input exits 2, other failures 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BadInput as e:
            raise UsageFailure(in_flags(str(e))) from None
        except CaptchagenError as e:
            raise click.ClickException(in_flags(str(e))) from None
        except OSError as e:  # a full disk or a place that cannot be written, wherever the write was
            failure = write_failure(e)
            if failure is None:
                raise
            raise click.ClickException(str(failure)) from None

    return wrapper


def in_flags(message: str) -> str:
    """The library names a setting by its field, in backticks (`min_len`); the running command names it by
    the flag that sets it (--min-len). Fields the command has no flag for stay as they are."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return message
    flags = {}
    for param in ctx.command.params:
        long = [o for o in param.opts if o.startswith("--")]
        if isinstance(param, click.Option) and param.name and long:
            # a setting with an old flag only (min_len) is named by the flag that replaced it (--length), unless
            # the old one is what was typed
            typed = ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE
            old = param.hidden and long[0] in OLD_NAMES and not typed
            flags[param.name] = MEANINGS[OLD_NAMES[long[0]]] if old else long[0]
    return re.sub(r"`(\w+)`", lambda m: flags.get(m[1], m[0]), message)


def beam_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--beam",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="CTC prefix beam width; 0 or 1 decodes greedily.",
    )(fn)


def reads_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--reads",
        metavar="ALPHABET",
        help="Output only these characters (a preset such as upper, or the characters), e.g. for captchas "
        "known to be upper case read by a model that also knows digits and lower case (like the base model). "
        "[default: every character the model knows]",
    )(fn)


def chosen_model(runs_dir: str, model_path: str | None) -> Path:
    """The model a command uses, saying which on stderr when the user did not choose it."""
    from trainer import bundled
    from trainer.runs import below_base, resolve_model

    path, why = resolve_model(Path(runs_dir), model_path)
    if why:
        click.echo(why, err=True)
    weaker = below_base(path) if model_path is None and not bundled.is_bundled(path) else None
    if weaker:
        click.echo(weaker, err=True)
    return path


def open_reader(
    runs_dir: str,
    model_path: str | None,
    reads: str | None = None,
    length: LengthChoice = "trained",
    case: str = "sensitive",
) -> tuple[Path, Any]:
    """The model a reading command uses (see chosen_model) and a Reader for it, limited to `reads`, reading
    under `length` (see options.read_length_option) and `case`."""
    from trainer.inference.reader import Reader

    path = chosen_model(runs_dir, model_path)
    reader = Reader(path)
    if reads is not None:  # an empty --reads is refused, not taken as "every character"
        reader.restrict(reads)
    reader.read_lengths(length)
    if case == "ignore":
        reader.ignore_case()
    return path, reader


def data_options(skip_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--skip-bad and --cache-dir, for the commands that read a whole dataset through the cache."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--cache-dir", help="Where decoded images are cached.  [default: ~/.cache/captchagen]")(fn)
        return click.option("--skip-bad", is_flag=True, help=skip_help)(fn)

    return decorate


def model_options(what: str, onnx: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--model and --runs-dir, shared by every command that uses a trained model; `what` completes the help,
    e.g. "to read with"."""
    kinds = "Checkpoint (.pt) or exported model (.onnx)" if onnx else "Checkpoint"

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--runs-dir", default="runs", show_default=True, help="Where to look for the newest run.")(fn)
        default = "[default: best.pt of the run named in RUNS_DIR/LATEST, or the base model if none]"
        also = (
            "`base` names the bundled base model, `base-v2` the one trained on the randomised family, `base-v3` "
            "the generalist"
        )
        return click.option("--model", "model_path", metavar="PATH", help=f"{kinds} {what}; {also}.  {default}")(fn)

    return decorate


def expand_inputs(inputs: tuple[str, ...]) -> list[str]:
    """Files as given, folders as every image under them (sorted), and globs expanded (sorted).
    Anything that matches nothing (a glob, a folder with no images) is kept as is, so that it gets its own
    error row."""
    paths: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += [str(f) for f in codec.image_files(p)] or [item]
        elif not p.exists() and any(ch in item for ch in "*?["):
            paths += sorted(glob.glob(item, recursive=True)) or [item]
        else:
            paths.append(item)
    return paths


class AverageRate:
    """Units per second since the first `rate` call: the figure a summary gives, not a moving window."""

    def __init__(self) -> None:
        self.started: tuple[float, int] | None = None

    def rate(self, done: int, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        if self.started is None:
            self.started = (now, done)
        t0, done0 = self.started
        return (done - done0) / (now - t0) if now > t0 and done > done0 else None


class LineProgress:
    """Progress as plain lines, for output that is not a terminal (a log file, a pipe, CI), where a live bar
    shows nothing until it ends: a line when work starts, then at most one every `every_s` seconds, and one
    when it is done, each with the average rate since the start (the figure a summary gives too)."""

    def __init__(
        self,
        echo: Callable[[str], None],
        what: str,
        unit: str = "images",
        rate: str = "img/s",
        every_s: float = 10.0,
        announce: bool = True,
    ) -> None:
        """`announce`: a line as soon as the work starts (else the first comes after `every_s`)."""
        self.echo, self.what, self.unit, self.rate, self.every_s = echo, what, unit, rate, every_s
        self.announce = announce
        self.average = AverageRate()
        self.last = -math.inf
        self.finished = False

    def update(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        first = self.average.started is None
        rate = self.average.rate(done, now)
        if first and not self.announce:
            self.last = now
        end = bool(total) and done >= (total or 0)
        if self.finished or not ((end and self.announce) or now - self.last >= self.every_s):
            return
        share = f" ({100 * done / total:.0f}%)" if total else ""
        shown = f"{rate:,.0f}" if rate and rate >= 10 else f"{rate:.2g}" if rate else ""  # 0.13 batches/s, not 0
        speed = f", {shown} {self.rate}" if rate else ""
        self.echo(f"{self.what}: {done:,}/{total or 0:,} {self.unit}{share}{speed}")
        self.last, self.finished = now, end


def listen(host: str, port: int) -> socket.socket:
    """A socket bound and listening on host:port (port 0 picks a free one), or a one-line error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise BadInput(f"--host {host!r} is not an address this machine can listen on ({e.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise CaptchagenError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def serve_local_page(host: str, port: int, make_app: Callable[[int | None], Any], says: Callable[[str], str]) -> None:
    """Serve a local page (`label`, `tune-style`) until Ctrl-C: listen on host:port, build the app with the
    bound port when the address is a loopback one (its Host names are then checked), print `says(url)`."""
    import uvicorn

    from captchagen.web import is_loopback
    from trainer.serving.protocol import with_header_deadline

    sock = listen(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    app = make_app(bound_port if is_loopback(bound_host) else None)
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(says(f"http://{shown}:{bound_port}"), color=False)
    config = uvicorn.Config(app, log_level="warning", http=with_header_deadline(10.0), server_header=False)
    run_until_stopped(config, sock)


def run_until_stopped(config: Any, sock: socket.socket) -> None:
    """Run a uvicorn server on `sock` until Ctrl-C or SIGTERM, then shut it down gracefully (open requests
    are answered) and return. uvicorn's own handling raises each captured signal again after the shutdown,
    into asyncio's handler: a second Ctrl-C then came out as a traceback (CancelledError, KeyboardInterrupt).
    Here the first signal stops the server, further ones are ignored, and none is raised again: stopping a
    server by Ctrl-C is its normal end."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            before = {sig: signal.signal(sig, self._stop) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in before.items():
                    signal.signal(sig, handler)

        def _stop(self, sig: int, frame: Any) -> None:
            # A second signal changes nothing: forcing the exit would cancel the app's lifespan task midway
            # (uvicorn logs that as an error with a traceback), and open requests end by their deadlines.
            self.should_exit = True

    # asyncio.run's own SIGINT handler stays out of it: ours is installed as the server starts; before it,
    # and after the server stopped (the command only reports and exits then), a Ctrl-C is ignored rather
    # than raised into the event loop's shutdown or the interpreter's.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    Server(config).run(sockets=[sock])
