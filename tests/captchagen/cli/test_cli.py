"""The command line: help everywhere, one-line errors with exit code 2 and nothing written, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from captchagen.cli import cli
from tests.helpers import TINY, run_cli


def test_every_command_and_option_has_help():
    ctx = click.Context(cli)
    for name, command in cli.commands.items():
        code, output = run_cli(name, "--help")
        assert code == 0 and "Usage:" in output
        assert command.help and "Example:" in command.help, f"{name} has no example"
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert param.help, f"{name} {param.opts} has no help text"
    assert cli.get_help(ctx)


def test_help_and_import_do_not_import_torch():
    code = (
        "import json, sys\n"
        "from click.testing import CliRunner\n"
        "import captchagen, captchagen.cli\n"
        "cli = captchagen.cli.cli\n"
        "for args in [['--help'], *([name, '--help'] for name in cli.commands)]:\n"
        "    assert CliRunner().invoke(cli, args).exit_code == 0, args\n"
        "heavy = [m for m in ('torch', 'fastapi', 'uvicorn', 'onnx', 'onnxruntime') if m in sys.modules]\n"
        "print(json.dumps({'commands': sorted(cli.commands), 'imported': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert {"make", "train", "test", "eval", "serve", "export"} <= set(seen["commands"])
    assert seen["imported"] == []


NOT_A_FONT = "not-a-font.ttf"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--alphabet", ""], "the alphabet is empty"),
        (["--alphabet", "ABCA"], "repeats the character 'A'"),
        (["--alphabet", "AB C"], "whitespace or a control character"),
        (["--alphabet", "AB\x07"], "U+0007"),
        (["--alphabet", "AB漢"], "has no glyph for the character '漢'"),
        (["--min-len", "0"], "--min-len must be at least 1"),
        (["--min-len", "5", "--max-len", "3"], "--min-len (5) is above --max-len (3)"),
        (["--n", "0"], "--n must be at least 1"),
        (["--font", "missing.ttf"], "font file 'missing.ttf' does not exist"),
        (["--font", NOT_A_FONT], "is not a TrueType/OpenType font"),
        (["--width", "10"], "too small to draw on"),
        (["--height", "8"], "too small to draw on"),
        (["--shards", "7:9"], "selects none of the dataset's 3 shards"),
        (["--shards", "a:b"], "is not START:STOP"),
        (["--max-len", "200", "--alphabet", "éü"], "the limit is 255"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    Path(NOT_A_FONT).write_text("plain text, not a font")
    out = tmp_path / "out"
    code, output = run_cli("make", "--n", "30", "--shard-size", "10", "--out", str(out), *TINY, *args)
    assert code == 2, output
    assert says in output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert not out.exists()


def test_out_that_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    code, output = run_cli("make", "--n", "5", "--out", str(target), *TINY)
    assert code == 2 and "is a file, not a folder" in output
    assert target.read_text() == "keep me"


def test_out_that_is_not_writable(tmp_path):
    if os.geteuid() == 0:  # root ignores permission bits; sysfs refuses new folders even to root
        out = Path("/sys/captchagen-test/d")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "d"
    code, output = run_cli("make", "--n", "5", "--out", str(out), *TINY)
    assert code == 2 and output.startswith(f"Error: cannot write to --out {out}"), output
    assert len(output.strip().splitlines()) == 1
    assert not out.exists()


def test_out_with_other_files_in_it_is_left_alone(tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    code, output = run_cli("make", "--n", "5", "--out", str(out), *TINY, "--overwrite")
    assert code == 2 and "holds no captchagen dataset" in output
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_the_cli_reference_is_current_and_goes_stale_when_a_help_string_changes(monkeypatch):
    from captchagen.cli import cli
    from captchagen.cli.reference import DOC, render

    assert DOC.read_text("utf-8") == render(), "docs/cli.md is stale: python -m captchagen.cli.reference --write"
    option = next(p for p in cli.commands["train"].params if p.name == "time_limit")
    monkeypatch.setattr(option, "help", option.help + " Changed.")
    assert DOC.read_text("utf-8") != render()


def test_one_meaning_has_one_name_in_every_command():
    """MEANINGS says which flag each shared meaning has; no command may show another name for it, nor an old
    name (OLD_NAMES) in its help, and every old name still works where it worked."""
    from captchagen.cli.options import MEANINGS, OLD_NAMES

    shown = {}
    for name, command in cli.commands.items():
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            visible = [o for o in param.opts if o not in getattr(param, "old", ())]
            if param.name in MEANINGS:
                assert visible == [MEANINGS[param.name]], (name, param.name, visible)
            for flag in visible:
                assert flag not in OLD_NAMES, (name, flag)
                shown.setdefault(flag, set()).add(name)
        help_text = command.get_help(click.Context(command, info_name=name))
        assert not [old for old in OLD_NAMES if f"{old} " in help_text or f"{old}," in help_text], name
    assert {"make", "preview", "adapt", "fit-style"} <= shown["--length"]
    assert {"train", "adapt"} <= shown["--time-limit"] and {"train", "adapt"} <= shown["--init-from"]
    assert {"make", "preview", "styles", "adapt"} <= shown["--n"] and {"make", "fonts", "adapt"} <= shown["--font-pack"]


@pytest.mark.parametrize(
    ("command", "old", "new", "value"),
    [
        ("adapt", ["--minutes", "3"], ["--time-limit", "3"], ("time_limit", 3.0)),
        ("adapt", ["--self-minutes", "3"], ["--self-time-limit", "3"], ("self_time_limit", 3.0)),
        ("adapt", ["--base", "base"], ["--init-from", "base"], ("init_from", "base")),
        ("preview", ["--count", "5"], ["--n", "5"], ("n", 5)),
        ("styles", ["--samples", "2"], ["--n", "2"], ("n", 2)),
        ("fonts", ["--pack", "wide"], ["--font-pack", "wide"], ("font_pack", "wide")),
    ],
)
def test_an_old_name_gives_what_the_new_one_gives(command, old, new, value):
    base = ["POOL", "--out", "OUT"] if command == "adapt" else []
    params = [cli.commands[command].make_context(command, [*base, *args]).params for args in (old, new)]
    assert params[0] == params[1] and params[0][value[0]] == value[1]


def test_length_sets_both_lengths_and_the_old_pair_still_works(tmp_path):
    for args, name in ((["--length", "3"], "a"), (["--min-len", "3", "--max-len", "3"], "b")):
        code, out = run_cli("make", "--n", "4", "--width", "80", "--height", "32", "--workers", "1", *args, "--out",
                            str(tmp_path / name))  # fmt: skip
        assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "a").glob("*/*.png")) == sorted(
        p.name for p in (tmp_path / "b").glob("*/*.png")
    )
    code, out = run_cli("make", "--n", "4", "--length", "3", "--min-len", "2", "--out", str(tmp_path / "c"))
    assert code == 2 and "give --length alone" in out and not (tmp_path / "c").exists()


@pytest.mark.parametrize("command", [["eval"], ["verify"], ["preview"], ["train"], ["train", "--resume"]])
def test_a_missing_path_is_one_line_and_exit_2_in_every_command(command, tmp_path):
    code, out = run_cli(*command, str(tmp_path / "nowhere"))
    assert code == 2 and len(out.strip().splitlines()) == 1 and "nowhere" in out, out
