"""docs/cli.md, written from the commands themselves: each command's --help, and the style file settings.

    python -m captchagen.cli.reference --write     # regenerate docs/cli.md
    python -m captchagen.cli.reference --check     # exit 1 if docs/cli.md is stale

The help strings are the one source of option text; a test fails when docs/cli.md no longer matches them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

WIDTH = 100  # the width help is wrapped at, whatever terminal regenerates the file
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def _help(command: click.Command, name: str, parent: click.Context | None) -> str:
    return command.get_help(_context(command, name, parent))


def render() -> str:
    """The whole of docs/cli.md."""
    from captchagen import style
    from captchagen.cli import cli

    root = _context(cli, "captchagen", None)
    parts = [
        "# Command-line reference",
        "",
        "Written by `python -m captchagen.cli.reference --write` from each command's own `--help`; do not edit",
        "it by hand (a test fails when it is stale).",
        "",
        "## captchagen",
        "",
        "```text",
        _help(cli, "captchagen", None),
        "```",
    ]
    for name in sorted(cli.commands):
        parts += ["", f"## captchagen {name}", "", "```text", _help(cli.commands[name], name, root), "```"]
    parts += [
        "",
        "## Style file settings",
        "",
        "What a style file (TOML or JSON, for `--style`) may set; `captchagen styles --fields` prints the same.",
        "",
        "| setting | holds | range | default | `random` draws |",
        "|---|---|---|---|---|",
        *(
            f"| `{n}` | {kind} | {bounds or '-'} | `{default}` | {drawn or '-'} |"
            for n, kind, bounds, default, drawn in style.field_table()
        ),
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--write"]:
        from captchagen import atomic

        atomic.write_bytes(DOC, text.encode("utf-8"))
        print(f"wrote {DOC}")
        return 0
    if argv == ["--check"]:
        fresh = DOC.is_file() and DOC.read_text("utf-8") == text
        print(f"{DOC} is {'up to date' if fresh else 'stale: run python -m captchagen.cli.reference --write'}")
        return 0 if fresh else 1
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
