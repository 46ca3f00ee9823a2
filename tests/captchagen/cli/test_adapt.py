"""`captchagen fit-style` and `captchagen adapt` on tiny pools of unlabelled captchas."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from captchagen import style
from captchagen.cli.adapt import tune_hint
from captchagen.unlabeled import list_images, seeded_sample
from tests.helpers import REPO, TINY, run_cli, shard_images, site_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """12 captchas of one look (light text on dark), named without their labels, as a site's would be."""
    root = tmp_path_factory.mktemp("pool")
    spec = root / "site.toml"
    spec.write_text('base = "clean"\nbackground = [20, 30, 90]\ntext_color = [230, 230, 120]\n')
    return site_pool(root, "--style", str(spec))


FONTS = REPO / "fonts"  # the bundled fonts: the fit never needs the wide pack
FIT = ["--alphabet", "ABCD1234", "--length", "4", "--rounds", "2", "--workers", "1", "--font", str(FONTS)]


def test_fit_style_writes_a_style_file_that_make_draws(pool, tmp_path):
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "fit"), *FIT)
    assert code == 0, out
    assert "pool vs pool" in out and "sheet.png" in out
    record = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert record["size"] == [80, 32] and record["pool"]["images"] == 12 and record["fonts"]
    assert record["distance"] > 0 and len(record["history"]) == 2
    # a fit far from the pool's own floor points to the page where a person tunes it by eye
    far = record["distance"] > 3 * record["floor"]
    assert ("captchagen tune-style " + f"{pool} --start {tmp_path / 'fit'}" in " ".join(out.split())) == far
    fitted = style.load(str(tmp_path / "fit" / "style.toml"))[1]
    assert fitted.to_dict() == record["style"]
    fonts = [a for f in record["fonts"] for a in ("--font", f["path"])]
    code, out = run_cli("make", "--n", "4", "--style", str(tmp_path / "fit" / "style.toml"), *fonts, *TINY,
                        "--out", str(tmp_path / "data"))  # fmt: skip
    assert code == 0, out
    assert len(shard_images(tmp_path / "data")) == 4


def test_fit_style_with_a_model_matches_what_it_sees_and_records_which(pool, tmp_path):
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "fit"), *FIT, "--model", "base-v3")
    assert code == 0, out
    assert "matching what" in out and "reader_lstm" in out
    record = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert {"reader_cnn", "reader_lstm"} <= set(record["groups"]) and record["settings"]["model"]
    missing = str(tmp_path / "x.pt")
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "none"), *FIT, "--model", missing)
    assert code == 1 and "x.pt does not exist" in out and "Traceback" not in out
    assert not (tmp_path / "none").exists()


def test_a_fit_far_from_the_pool_points_to_the_style_page_and_a_near_one_does_not(tmp_path):
    hint = tune_hint(0.474, 0.048, tmp_path / "pool", tmp_path / "fit")
    assert hint is not None and "10x" in hint
    assert f"captchagen tune-style {tmp_path / 'pool'} --start {tmp_path / 'fit'} --out TUNED" in hint
    assert "--style TUNED/style.toml --font TUNED/fonts" in hint
    assert tune_hint(0.14, 0.048, tmp_path / "pool", tmp_path / "fit") is None  # under 3x: near enough
    assert "far from" in (tune_hint(0.1, 0.0, tmp_path, tmp_path) or "")  # a pool of one look: no ratio
    assert "tune-style 'my pool' --start" in (tune_hint(1.0, 0.1, Path("my pool"), tmp_path) or "")  # pastes as is


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--length", "6-4"], "--length"),
        (["--length", "four"], "--length"),
        (["--alphabet", ""], "alphabet"),
    ],
)
def test_bad_fit_options_are_one_line_usage_errors(pool, tmp_path, args, message):
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "fit"), *FIT, *args)
    assert code == 2 and message in out and "Traceback" not in out
    assert not (tmp_path / "fit").exists()


def test_fit_and_style_together_are_one_usage_error(pool, tmp_path):
    code, out = run_cli(
        "adapt", str(pool), "--out", str(tmp_path / "out"), *FIT, "--style", "varied", "--fit", "reader"
    )
    assert code == 2 and "--fit" in out and "--style" in out and "Traceback" not in out
    assert not (tmp_path / "out").exists()


def test_a_pool_that_is_not_a_folder_of_images_is_refused(tmp_path):
    (tmp_path / "few").mkdir()
    (tmp_path / "few" / "a.png").write_bytes(b"not an image")
    for folder in (tmp_path / "missing", tmp_path / "few"):
        code, out = run_cli("adapt", str(folder), "--out", str(tmp_path / "out"), *FIT)
        assert code == 2 and "pool" in out and "Traceback" not in out
    assert not (tmp_path / "out").exists()


def test_adapt_runs_every_step_then_skips_them_and_refits_a_changed_pool(tmp_path, capfd):
    spec = tmp_path / "site.toml"
    spec.write_text('base = "clean"\nbackground = [20, 30, 90]\ntext_color = [230, 230, 120]\n')
    site = site_pool(tmp_path, "--style", str(spec), n=64)
    args = ["adapt", str(site), "--out", str(tmp_path / "a"), *FIT, "--n", "100", "--init-from", "base",
            "--time-limit", "0.03", "--self-time-limit", "0.03"]  # fmt: skip
    code, out = run_cli(*args)
    err = capfd.readouterr().err
    assert code == 0, out + err
    steps = [line.split() for line in (out + err).splitlines() if line.startswith("+ captchagen ")]
    # two looks (by the statistics, and by them and what the base model sees), each fitted, made, fine-tuned
    assert [s[2] for s in steps] == ["fit-style", "make", "train"] * 2 + ["compare", "train", "compare"]
    assert "--overwrite" not in sum(steps, [])
    assert "--model" not in steps[0] and steps[3][steps[3].index("--model") + 1] == "base"
    fitted = json.loads((tmp_path / "a" / "fit-reader" / "fit.json").read_text())
    assert {"reader_cnn", "reader_lstm"} <= set(fitted["groups"])
    # Self-training learns the pool less the 16 images (a quarter of 64) both comparisons read, as
    # `compare --sample 16 --seed 0` draws them: the self-trained model is judged on images it never learnt.
    learnt_list = Path(steps[7][steps[7].index("--unlabeled") + 1])
    learnt = {(learnt_list.parent / line).resolve() for line in learnt_list.read_text().splitlines()}
    images = list_images(site).paths
    compared = {p.resolve() for p in seeded_sample(images, 16, 0)}
    assert len(learnt) == 48 and learnt.isdisjoint(compared) and learnt | compared == {p.resolve() for p in images}
    assert all(s[s.index("--sample") + 1] == "16" and s[s.index("--seed") + 1] == "0" for s in (steps[6], steps[8]))
    assert "16 others are held out" in out + err
    adapted = tmp_path / "a" / "runs" / "adapted"
    assert (adapted / "best.pt").exists() and "estimate" in out + err  # compare's table
    # what adapt returns reads the pool, by the estimate, no worse than the base model it started from
    estimates = json.loads((tmp_path / "a" / "adapt.json").read_text())["estimates"]
    assert set(estimates) == {"start", "result"}
    assert set(estimates["result"]) == {"base", "synthetic", "synthetic-reader", "adapted"}
    returned = out.split("Adapted model: ")[1].split()[0]
    assert returned == str(tmp_path / "a" / "model.pt")
    said = next(line for line in (out + err).splitlines() if "model.pt is the" in line)
    kind = said.split("model.pt is the ")[1].split()[0]
    assert estimates["result"][kind] >= estimates["result"]["base"]
    pseudo = [json.loads(line).get("pseudo") for line in (adapted / "metrics.jsonl").read_text().splitlines()]
    assert any(pseudo)  # the teacher's readings of the pool were counted
    model = (adapted / "best.pt").read_bytes()

    # Again, with the pool named by its absolute path and another --workers (same output): nothing to do.
    again = [a if a != str(site) else str(site.resolve()) for a in args]
    again[again.index("--workers") + 1] = "2"
    code, out = run_cli(*again)
    assert code == 0 and "+ captchagen" not in out + capfd.readouterr().err
    assert (adapted / "best.pt").read_bytes() == model

    shutil.copyfile(next(site.iterdir()), site / "one-more.png")  # the pool changed: fit and self-train again
    code, out = run_cli(*args)
    err = capfd.readouterr().err
    assert code == 0, out + err
    assert "the pool changed" in out + err and "removed" in out + err
    ran = [s.split()[2:] for s in (out + err).splitlines() if s.startswith("+ captchagen ")]
    assert ran[0][0] == "fit-style" and ran[-1][0] == "compare" and "--unlabeled" in ran[-2]


def test_adapt_refuses_bad_options_and_outs_before_any_step(pool, tmp_path, capfd):
    (tmp_path / "afile").write_text("")
    mine = tmp_path / "mine"
    (mine / "fit").mkdir(parents=True)
    (mine / "fit" / "style.toml").write_text("# my own style\n")
    cases = [
        (["--init-from", "nonsense"], "--init-from 'nonsense' is not a checkpoint"),
        (["--base", "nonsense"], "--init-from 'nonsense' is not a checkpoint"),  # the old name still works
        (["--time-limit", "inf"], "--time-limit"),
        (["--self-time-limit", "nan"], "--self-time-limit"),
        (["--minutes", "inf"], "--time-limit"),
        (["--out", str(pool / "adapted")], "inside the pool"),
        (["--out", str(tmp_path / "afile")], "is a file"),
        (["--out", str(mine)], "fit is in --out but not made by this adapt"),
    ]
    for extra, message in cases:
        args = ["adapt", str(pool), "--out", str(tmp_path / "o"), *FIT, "--n", "100", *extra]
        code, out = run_cli(*args)
        out += capfd.readouterr().err
        assert code == 2 and message in out and "Traceback" not in out, (extra, out)
        assert "+ captchagen" not in out
    assert not (tmp_path / "o").exists() and not (pool / "adapted").exists()
    assert (mine / "fit" / "style.toml").read_text() == "# my own style\n" and not (mine / "adapt.json").exists()
