"""Helpers shared by the CLI commands: library errors become one-line click errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from captchagen.errors import BadInput, CaptchagenError


class UsageFailure(click.ClickException):
    """A one-line `Error: ...` with exit code 2, for bad settings found after click parsed them."""

    exit_code = 2


def library_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into one-line click errors: bad input exits 2, other failures 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BadInput as e:
            raise UsageFailure(str(e)) from None
        except CaptchagenError as e:
            raise click.ClickException(str(e)) from None

    return wrapper
