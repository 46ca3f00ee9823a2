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


def missing_extra(what: str, extra: str, missing: str | list[str]) -> CaptchagenError:
    """The error for an optional dependency that is not installed, saying which extra brings it."""
    names = [missing] if isinstance(missing, str) else list(missing)
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    verb = "is" if len(names) == 1 else "are"
    return CaptchagenError(
        f"{what} needs the {extra} extra ({listed} {verb} missing): pip install -c constraints.txt -e '.[{extra}]'"
    )


# The modules each extra of setup.cfg brings that its commands import.
EXTRA_MODULES = {"onnx": ("onnx", "onnxscript", "onnxruntime")}


def require_modules(what: str, extra: str, modules: tuple[str, ...]) -> None:
    """Raise missing_extra at once when any of `modules` is not installed: found without importing them (or
    torch), so the user hears it in a fraction of a second, not after the heavy imports."""
    import importlib.util

    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules, or a broken one
            found = False
        if not found:
            missing.append(name)
    if missing:
        raise missing_extra(what, extra, missing)


def check_format(data: object, path: object, name: str, version: int, what: str, older: tuple[int, ...] = ()) -> None:
    """Raise CaptchagenError unless `data` is a dict tagged with format `name` and format_version `version`
    (or one of the `older` versions this captchagen still reads)."""
    if not isinstance(data, dict) or data.get("format") != name:
        raise CaptchagenError(f"{path} is not a {what}")
    if data.get("format_version") != version and data.get("format_version") not in older:
        raise CaptchagenError(
            f"{path} has {what} format version {data.get('format_version')}; this captchagen reads version {version}"
        )
