"""Errors the library raises for bad input; the CLI turns them into one-line messages."""


class CaptchagenError(Exception):
    """Something the user asked for cannot be done; the message says what and why."""


class BadInput(CaptchagenError, ValueError):
    """A setting or input is invalid. `param` names the option it came from, when there is one."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
