"""`captchagen tune-style`: the tuner (looks, checks, saves that `make` draws), the page's HTTP rules (token,
loopback Host, no paths from requests), and tuning by keyboard and mouse in headless Chromium."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from captchagen import style
from captchagen.errors import BadInput
from captchagen.fitting.pool_fit import open_pool
from captchagen.fitting.search import Settings
from captchagen.fitting.tuning import LOOK, Tuner, open_start
from captchagen.fonts import load_font
from tests.helpers import REPO, TINY, Server, run_cli, site_pool

FONTS = sorted(str(p) for p in (REPO / "fonts").glob("*.ttf"))  # the bundled fonts, as the pool was made in
SITE = {"background": [20, 30, 90], "text_color": [230, 230, 120]}  # light text on a dark blue ground
SETTINGS = Settings(alphabet="ABCD1234", min_len=4, max_len=4, width=80, height=32)


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pool")
    spec = root / "site.toml"
    spec.write_text('base = "clean"\n' + "".join(f"{k} = {json.dumps(v)}\n" for k, v in SITE.items()))
    return site_pool(root, "--style", str(spec))


@pytest.fixture(scope="module")
def tuner(pool) -> Tuner:
    return Tuner(open_pool(pool, 200, 0), SETTINGS, FONTS, open_start(None, FONTS, 0))


def test_the_sites_own_look_is_nearer_than_the_start_and_a_look_is_the_same_each_time(tuner):
    fonts = tuple(FONTS)
    start = tuner.look(style.DEFAULT, fonts, seed=0)
    site = style.from_dict(SITE, style.PRESETS["clean"])
    near = tuner.look(site, fonts, seed=0)
    assert len(near.images) == LOOK and near.images[0].size == (80, 32)
    assert near.distance < 0.5 * start.distance
    assert near.groups["palette"] < start.groups["palette"]
    again = tuner.look(site, fonts, seed=0)
    assert again.distance == near.distance and again.images[0].tobytes() == near.images[0].tobytes()
    assert tuner.look(site, fonts, seed=1).images[0].tobytes() != near.images[0].tobytes()  # Redraw


@pytest.mark.parametrize(
    ("values", "fonts", "message"),
    [
        ({"noise_dots": -1}, [0], "style `noise_dots`: must be 0 to 5000"),
        ({"no_such_knob": 1}, [0], "style `no_such_knob`: unknown setting"),
        ({"randomize": True}, [0], "draw a new style per image"),
        ({}, [], "at least one font"),
        ({}, [99], "numbers of candidate fonts"),
        ({}, ["../etc/passwd"], "numbers of candidate fonts"),
        ([], [0], "table of settings"),
    ],
)
def test_a_bad_request_names_what_is_wrong(tuner, values, fonts, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(")):
        tuner.check(values, fonts)


def test_a_save_is_a_style_file_and_fonts_that_make_draws(tuner, tmp_path):
    out = tmp_path / "tuned"
    chosen_style, fonts = tuner.check({"background": [20, 30, 90], "noise_dots": 3}, [1, 0])
    record = tuner.save(out, chosen_style, fonts, seed=4)
    assert style.load(str(out / "style.toml"))[1] == chosen_style
    assert sorted(p.name for p in (out / "fonts").iterdir()) == sorted(Path(f).name for f in fonts)
    assert record["fonts"][0]["sha256"] == load_font(fonts[0]).sha256 and record["size"] == [80, 32]
    assert json.loads((out / "tune.json").read_text()) == json.loads(json.dumps(record))
    assert record["distance"] == tuner.look(chosen_style, fonts, seed=4).distance
    code, text = run_cli("make", "--n", "4", "--style", str(out / "style.toml"), "--font", str(out / "fonts"), *TINY,
                         "--out", str(tmp_path / "data"))  # fmt: skip
    assert code == 0, text
    made = json.loads((tmp_path / "data" / "manifest.json").read_text())["settings"]
    assert sorted(f["sha256"] for f in made["fonts"]) == sorted(load_font(f).sha256 for f in fonts)


def test_saving_again_keeps_only_the_chosen_fonts_and_a_strangers_file_is_refused(tuner, tmp_path):
    out = tmp_path / "tuned"
    tuner.save(out, style.DEFAULT, (FONTS[0], FONTS[1]), seed=0)
    (out / "fonts" / Path(FONTS[1]).name).write_bytes(Path(FONTS[2]).read_bytes())  # edited in place
    tuner.save(out, style.DEFAULT, (FONTS[1],), seed=0)
    assert [p.name for p in (out / "fonts").iterdir()] == [Path(FONTS[1]).name]
    assert load_font(out / "fonts" / Path(FONTS[1]).name).sha256 == load_font(FONTS[1]).sha256  # written again
    (out / "fonts" / "mine.ttf").write_bytes(Path(FONTS[2]).read_bytes())
    with pytest.raises(BadInput, match="mine.ttf, which tune-style did not save"):
        tuner.save(out, style.DEFAULT, (FONTS[0],), seed=0)
    assert (out / "fonts" / "mine.ttf").is_file()


def test_a_folder_holding_someone_elses_style_or_sheet_is_refused(tuner, tmp_path):
    fit = tmp_path / "fit"
    fit.mkdir()
    (fit / "style.toml").write_text('base = "heavy"\n')  # a fit's output, or the user's own style
    with pytest.raises(BadInput, match="holds a style.toml that tune-style did not write"):
        tuner.save(fit, style.DEFAULT, (FONTS[0],), seed=0)
    assert (fit / "style.toml").read_text() == 'base = "heavy"\n' and not (fit / "fonts").exists()
    tuner.save(tmp_path / "tuned", style.DEFAULT, (FONTS[0],), seed=0)
    tuner.save(tmp_path / "tuned", style.PRESETS["heavy"], (FONTS[0],), seed=0)  # its own: replaced
    assert style.load(str(tmp_path / "tuned" / "style.toml"))[1] == style.PRESETS["heavy"]


def test_the_start_is_a_fit_folder_with_its_fonts_and_a_changed_font_is_refused(pool, tmp_path):
    font = tmp_path / "own" / "f.ttf"
    font.parent.mkdir()
    shutil.copy(FONTS[0], font)
    code, out = run_cli("fit-style", str(pool), "--out", str(tmp_path / "fit"), "--alphabet", "ABCD1234",
                        "--length", "4", "--rounds", "1", "--workers", "1", "--font", str(font))  # fmt: skip
    assert code == 0, out
    start = open_start(str(tmp_path / "fit"), FONTS, 0)
    assert start.fonts == (str(font),) and start.style == style.load(str(tmp_path / "fit" / "style.toml"))[1]
    tuner = Tuner(open_pool(pool, 200, 0), SETTINGS, FONTS, start)
    assert tuner.fonts[0] == str(font) and len(tuner.fonts) == len(FONTS) + 1  # offered though not a candidate
    font.write_bytes(Path(FONTS[1]).read_bytes())
    with pytest.raises(BadInput, match="gone or changed since the fit"):
        open_start(str(tmp_path / "fit"), FONTS, 0)
    with pytest.raises(BadInput, match="not a fit-style output folder"):
        open_start(str(tmp_path), FONTS, 0)
    assert open_start("heavy", FONTS, 0).style == style.PRESETS["heavy"]
    with pytest.raises(BadInput, match="draws a new style for every image"):
        open_start("varied", FONTS, 0)  # no one look: the page would show and tune another


def test_fonts_are_found_by_name_family_or_kind_and_twins_by_their_folder(pool, tmp_path):
    twin = tmp_path / "other" / Path(FONTS[0]).name
    twin.parent.mkdir()
    shutil.copy(FONTS[1], twin)  # another font under the first one's file name
    kinds = {str(Path(FONTS[0]).resolve()): "handwriting"}
    tuner = Tuner(open_pool(pool, 200, 0), SETTINGS, [*FONTS, str(twin)], open_start(None, FONTS, 0), kinds)
    found, matched = tuner.font_list("handwriting")
    assert matched == 1 and found[0]["name"] == f"fonts/{Path(FONTS[0]).name}" and "handwriting" in found[0]["about"]
    assert [f["name"] for f in tuner.font_list(Path(FONTS[0]).stem)[0]] == [f"fonts/{Path(FONTS[0]).name}",
                                                                           f"other/{twin.name}"]  # fmt: skip
    # The twin is DejaVu Sans under another font's file name: found by the family it names itself by.
    assert sorted(f["name"] for f in tuner.font_list("DEJAVU")[0]) == [Path(FONTS[1]).name, f"other/{twin.name}"]
    assert tuner.font_list("no such font")[1] == 0


# ---- the server ----


@pytest.fixture
def server(pool, tmp_path):
    srv = Server(None, str(pool), "--out", str(tmp_path / "tuned"), "--alphabet", "ABCD1234", "--length", "4",
                 "--font", str(REPO / "fonts"), verb="tune-style")  # fmt: skip
    yield srv
    srv.stop()


def token_of(srv: Server) -> str:
    _, page = srv.request("GET", "/")
    return page.split('const TOKEN = "', 1)[1].split('"', 1)[0]


def post(srv: Server, path: str, body: dict, token: str | None):
    headers = {"Content-Type": "application/json", **({"X-Style-Token": token} if token is not None else {})}
    return srv.request("POST", path, json.dumps(body).encode(), headers)


def test_the_server_looks_and_saves_only_with_its_token_and_names_things_by_number(server, tmp_path):
    status, start = server.request("GET", "/api/start")
    assert status == 200 and start["size"] == [80, 32] and start["pool"]["shown"] == 12
    assert {f["name"] for f in start["fields"]} >= {"font_sizes", "noise_dots", "shadow", "backdrop"}
    assert "randomize" not in start["values"] and start["values"]["noise_dots"] == style.DEFAULT.noise_dots
    request = {"style": SITE, "fonts": [0], "seed": 0}
    assert post(server, "/api/look", request, None)[0] == 403
    assert post(server, "/api/save", request, "wrong")[0] == 403
    token = token_of(server)
    status, seen = post(server, "/api/look", request, token)
    assert status == 200 and len(seen["images"]) == 12 and seen["images"][0].startswith("data:image/png;base64,")
    assert seen["distance"] > 0 and seen["floor"] > 0
    status, bad = post(server, "/api/look", {**request, "style": {"blur": "a lot"}}, token)
    assert status == 422 and "style `blur`" in bad["error"]
    assert post(server, "/api/look", {"style": {}}, token)[0] == 400
    assert post(server, "/api/look", {**request, "seed": -1}, token)[0] == 400
    assert post(server, "/api/look", {**request, "fonts": ["/etc/passwd"]}, token)[0] == 422
    assert server.request("POST", "/api/look", b"x" * 70_000, {"X-Style-Token": token})[0] == 413
    for path in ("/pool/12", "/pool/-1", "/font/999", "/pool/..%2F..%2Fetc%2Fpasswd"):
        assert server.request("GET", path)[0] in (404, 422), path
    status, image = server.request("GET", "/pool/0")
    assert status == 200 and image.startswith(b"\x89PNG")
    assert server.request("GET", "/font/0")[1].startswith(b"\x89PNG")
    assert not (tmp_path / "tuned" / "style.toml").exists()  # a look writes nothing
    status, saved = post(server, "/api/save", request, token)
    assert status == 200 and saved["distance"] == seen["distance"]
    assert style.load(str(tmp_path / "tuned" / "style.toml"))[1] == style.from_dict(SITE)
    code, _ = server.stop()
    assert code == 0 and "Saved style:" in server.output


def test_a_request_for_another_host_name_is_refused(server):
    status, body = server.request("GET", "/api/start", headers={"Host": "attacker.example:80"})
    assert status == 421 and "loopback" in body["error"]


def test_a_second_page_on_the_same_out_is_refused_while_the_first_runs(server, pool, tmp_path):
    code, out = run_cli("tune-style", str(pool), "--out", str(tmp_path / "tuned"), "--port", "0")
    assert code == 1 and "in use by another captchagen tune-style" in out and len(out.strip().splitlines()) == 1


def test_bad_usage_is_a_one_line_error(pool, tmp_path):
    for args, message in [
        ([str(tmp_path / "missing")], "is not a folder of images"),
        ([str(pool), "--start", str(tmp_path)], "not a fit-style output folder"),
        ([str(pool), "--start", "no-such-style"], "neither a preset"),
        ([str(pool), "--alphabet", "ABCD1234", "--length", "9-2"], "--length"),
    ]:
        code, out = run_cli("tune-style", *args, "--out", str(tmp_path / "o"), "--port", "0")
        assert code == 2 and message in out and "Traceback" not in out, (args, out)
        assert not (tmp_path / "o").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "sheet.png").write_bytes(b"my own picture")
    code, out = run_cli("tune-style", str(pool), "--out", str(mine), "--port", "0")
    assert code == 2 and "holds a sheet.png that tune-style did not write" in out
    assert sorted(p.name for p in mine.iterdir()) == ["sheet.png"]  # not even a lock file left there


# ---- the page, in a real browser ----


def test_tuning_by_keyboard_and_mouse_in_a_browser(open_page, server, tmp_path):
    page = open_page(server.url + "/")
    page.wait_for_function("document.getElementById('tuned').dataset.version")
    assert page.locator("#pool img").count() == 12 and page.locator("#tuned img").count() == 12
    first = float(page.text_content("#distance").split()[1])
    version = page.get_attribute("#tuned", "data-version")
    # Type the site's colours into their boxes (Tab leaves a box, which applies it): the distance falls.
    for name, value in SITE.items():
        page.fill(f"#f-{name}", json.dumps(value))
        page.press(f"#f-{name}", "Tab")
    page.wait_for_function(f"document.getElementById('tuned').dataset.version !== '{version}'")
    page.wait_for_function(f"parseFloat(document.getElementById('distance').textContent.split(' ')[1]) < {first}")
    # A bad value is named, and the field marked.
    page.fill("#f-blur-box", "99")
    page.press("#f-blur-box", "Tab")
    page.wait_for_function("document.getElementById('error').textContent.includes('style `blur`')")
    assert "bad" in page.get_attribute("#field-blur", "class")
    page.keyboard.press("Control+z")  # takes the bad blur back
    page.wait_for_function("document.getElementById('error').textContent === ''")
    # Fonts: search, Enter adds the first match; remove the others.
    page.fill("#font-search", Path(FONTS[2]).stem)
    page.wait_for_function("document.getElementById('font-count').textContent.startsWith('1 of')")
    page.press("#font-search", "Enter")
    for font in FONTS[:2]:
        if page.locator(f"#chosen button[aria-label='remove {Path(font).name}']").count():
            page.click(f"#chosen button[aria-label='remove {Path(font).name}']")
    page.wait_for_function("document.querySelectorAll('#chosen .font').length === 1")
    page.keyboard.press("Control+s")
    page.wait_for_function("document.getElementById('saved').textContent.startsWith('saved in')")
    saved = style.load(str(tmp_path / "tuned" / "style.toml"))[1]
    assert saved.background == tuple(SITE["background"]) and saved.text_color == tuple(SITE["text_color"])
    assert saved.blur == style.DEFAULT.blur
    assert [p.name for p in (tmp_path / "tuned" / "fonts").iterdir()] == [Path(FONTS[2]).name]
