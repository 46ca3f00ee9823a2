"""Errors the library raises for bad input; the CLI turns them into one-line messages."""


class CaptchagenError(Exception):
    """Something the user asked for cannot be done; the message says what and why."""


class BadInput(CaptchagenError, ValueError):
    """A setting or input is invalid. `param` names the setting it came from, when there is one.

    Messages name settings by their field in backticks (`min_len`), never by a command-line flag: the CLI
    shows each as the flag of the command that ran (--min-len)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def missing_extra(what: str, extra: str, missing: str) -> CaptchagenError:
    """The error for an optional dependency that is not installed, saying which extra brings it."""
    return CaptchagenError(
        f"{what} needs the {extra} extra ({missing} is missing): pip install -c constraints.txt -e '.[{extra}]'"
    )


def check_format(data: object, path: object, name: str, version: int, what: str) -> None:
    """Raise CaptchagenError unless `data` is a dict tagged with format `name` and format_version `version`."""
    if not isinstance(data, dict) or data.get("format") != name:
        raise CaptchagenError(f"{path} is not a {what}")
    if data.get("format_version") != version:
        raise CaptchagenError(
            f"{path} has {what} format version {data.get('format_version')}; this captchagen reads version {version}"
        )
