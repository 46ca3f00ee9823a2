"""Options that mean the same thing in several commands, written once (as sqlite-utils' option decorators):
one name, one help, one type each. MEANINGS is the table of them that a test holds every command to, and
OLD_NAMES the names they replaced, which still work but are not shown."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from trainer.inference.lengths import LengthChoice

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

# What an option means (its parameter's name) -> the one flag every command uses for it.
MEANINGS = {
    "length": "--length",  # a label length or range
    "time_limit": "--time-limit",  # minutes of training
    "self_time_limit": "--self-time-limit",  # minutes of self-training (adapt)
    "init_from": "--init-from",  # the model training starts from
    "n": "--n",  # how many images
    "font_pack": "--font-pack",
    "runs_dir": "--runs-dir",
    "model_path": "--model",  # the model a command reads with
    "case": "--case",  # whether a reading's letter case counts
    "pseudo": "--pseudo",  # how self-training chooses the readings of unlabelled images it learns
    "labels": "--labels",  # a folder of the site's captchas the user labelled
    "answer": "--answer",  # answer readings of arithmetic captchas
}
# Names that meant one of the above in earlier versions: still taken, never shown.
OLD_NAMES = {
    "--min-len": "length",
    "--max-len": "length",
    "--minutes": "time_limit",
    "--self-minutes": "self_time_limit",
    "--base": "init_from",
    "--count": "n",
    "--samples": "n",
    "--pack": "font_pack",
}


class UsageFailure(click.ClickException):
    """A one-line `Error: ...` with exit code 2, for bad settings found after click parsed them."""

    exit_code = 2


class FiniteFloat(click.FloatRange):
    """A float in a range, and finite: click's FloatRange lets `nan` through (every comparison with it is
    false) and takes `inf` where there is no upper bound."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def positive_float() -> FiniteFloat:
    return FiniteFloat(min=0, min_open=True)


class Aliased(click.Option):
    """An option that also takes its old names (`old`), which --help does not show."""

    def __init__(self, *args: Any, old: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.old = old
        self.opts = [*self.opts, *old]

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown = self.opts
        self.opts = [o for o in shown if o not in self.old]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


class ExistingPath(click.Path):
    """click.Path(exists=True) whose refusal is the one-line `Error: ...` (exit 2) of every other bad input,
    not a usage block: the same form for a missing path in every command."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(exists=True, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        name = param.human_readable_name if param is not None else "the path"
        if not Path(value).exists():
            raise UsageFailure(f"{value} does not exist ({name})")
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as e:
            raise UsageFailure(e.format_message()) from None


def parse_length(value: str) -> tuple[int, int]:
    """`5` or `4-6` as (shortest, longest); click.BadParameter otherwise."""
    lo, _, hi = value.partition("-")
    try:
        pair = (int(lo), int(hi or lo))
    except ValueError:
        raise click.BadParameter(f"must be a length or a range such as 4-6, got {value!r}") from None
    if not 1 <= pair[0] <= pair[1] <= 40:
        raise click.BadParameter(f"must be 1 to 40 characters, the shorter first, got {value!r}")
    return pair


def length_option(default: str | None, shown_default: str) -> Decorator:
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
        try:
            return None if value is None else parse_length(value)
        except click.BadParameter as e:
            raise UsageFailure(f"--length {e.message}") from None  # one line, as every bad value

    return click.option(
        "--length",
        default=default,
        callback=check,
        metavar="N|A-B",
        help=f"Label length, or a range: 5, 4-6.  [default: {shown_default}]",
    )


def read_length_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--length for the commands that read: the label lengths a reading may have, `any`, or by default those
    the model was trained on. A value, not a filter: the reading is the most probable string of an allowed
    length."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> LengthChoice:
        if value is None:
            return "trained"
        if value == "any":
            return "any"
        try:
            return parse_length(value)
        except click.BadParameter as e:
            raise UsageFailure(f"--length {e.message.replace('range such as', 'range such as any or')}") from None

    return click.option(
        "--length",
        callback=check,
        metavar="N|A-B|any",
        help="Read only strings of this length or range (5, 4-6): the most probable string of such a length, "
        "not a reading refused after it is made; `any` for every length.  [default: the lengths the model was "
        "trained on; any for a model that does not record them, as the bundled ones]",
    )(fn)


def answer_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--answer",
        is_flag=True,
        help="Answer each reading as an arithmetic captcha (`7+12=?` -> 19; `make --arithmetic` draws them): "
        "a reading that is not one number, an operator and another has no answer (null). eval also scores the "
        "answers; serve adds one to each prediction.",
    )(fn)


def case_option_for(help: str) -> Decorator:
    """`--case sensitive|ignore`, one flag for every command that reads, compares or learns as a site checks;
    `help` says what it changes there."""
    return click.option("--case", type=click.Choice(["sensitive", "ignore"]), default="sensitive",
                        show_default=True, help=help)  # fmt: skip


case_option = case_option_for(
    "`ignore` reads as a site that ignores case checks: a letter's two cases count as one (their "
    "probabilities summed), readings are in lower case, and scoring compares without case."
)


def pseudo_option(default: str) -> Decorator:
    return click.option(
        "--pseudo",
        type=click.Choice(["ranked", "threshold"]),
        default=default,
        show_default=True,
        help="Which readings of the unlabelled images are learnt. ranked: in rounds of a few epochs, the teacher "
        "re-reads the whole pool, and the most certain readings that shifted copies of the image read alike are "
        "learnt, a share of the pool growing each round, balanced over characters (it learns where the teacher "
        "is rarely sure). threshold: readings whose whole-string confidence reaches a threshold (train's "
        "--pseudo-threshold, 0.9 by default), batch by batch.",
    )


def time_limit_option(default: float, help: str, self_training: bool = False) -> Decorator:
    name, old = ("--self-time-limit", "--self-minutes") if self_training else ("--time-limit", "--minutes")
    return click.option(
        name, cls=Aliased, old=(old,), type=positive_float(), default=default, show_default=True,
        metavar="MINUTES", help=help,
    )  # fmt: skip


def init_from_option(default: str, help: str) -> Decorator:
    return click.option("--init-from", cls=Aliased, old=("--base",), default=default, show_default=True,
                        metavar="MODEL", help=help)  # fmt: skip


def runs_dir_option(help: str = "Where to look for the newest run.") -> Decorator:
    return click.option("--runs-dir", default="runs", show_default=True, help=help)


def n_option(default: int, help: str, old: tuple[str, ...] = (), **kwargs: Any) -> Decorator:
    return click.option("--n", "n", cls=Aliased, old=old, default=default, show_default=True, help=help, **kwargs)


def default_font_pack(fonts: tuple[str, ...], font_pack: str | None) -> str | None:
    """The `wide` pack when no font is named and it is installed (a fit has 415 fonts to choose from)."""
    if fonts or font_pack:
        return font_pack
    from captchagen.fontpacks import installed

    have, _missing = installed("wide")
    return "wide" if any(have.values()) else None


def font_pack_option(help: str, default: str | None = None, old: tuple[str, ...] = ()) -> Decorator:
    from captchagen.fontpacks import PACKS

    return click.option("--font-pack", cls=Aliased, old=old, type=click.Choice(sorted(PACKS)), default=default,
                        show_default=default is not None, help=help)  # fmt: skip
