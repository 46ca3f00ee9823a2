"""The page `captchagen serve` shows at /: upload or draw a captcha in headless Chromium, see what it reads.

Uses Debian's chromium (the README's test command installs it) through Playwright; no browser is downloaded.
Without chromium the tests skip, unless CAPTCHAGEN_REQUIRE_BROWSER=1 (set by .ci/run), where they fail."""

from __future__ import annotations

import pytest

from tests.helpers import Server, expected_readings, shard_images


@pytest.fixture(scope="module")
def server(reading_model):
    srv = Server(reading_model[1])
    yield srv
    srv.stop()


@pytest.fixture
def page(open_page, server):
    return open_page(server.url + "/")


def test_upload_an_image_and_see_what_the_model_reads(page, reading_model):
    data, ckpt = reading_model
    image = shard_images(data)[3]
    ((text, confidence),) = expected_readings(ckpt, [image])
    page.wait_for_function("document.getElementById('model').textContent.includes('best.pt')")
    page.set_input_files("#file", str(image))
    page.wait_for_selector("#result[data-state=done]", timeout=30_000)
    assert page.text_content("#text") == (text or "(nothing)")
    assert page.text_content("#confidence") == f"{confidence:.3f}"
    assert page.is_visible("#preview")


def test_draw_on_the_canvas_and_read_it(page):
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(box["x"] + 20 + step * 8, box["y"] + 20 + (step % 4) * 8)
    page.mouse.up()
    with page.expect_response("**/predict") as response_info:
        page.click("#read-drawing")
    answer = response_info.value.json()
    page.wait_for_selector("#result[data-state=done]", timeout=30_000)
    (prediction,) = answer["predictions"]
    assert prediction["name"] == "drawing.png"
    assert page.text_content("#text") == (prediction["text"] or "(nothing)")
    assert page.text_content("#confidence") == f"{prediction['confidence']:.3f}"


def test_a_bad_upload_shows_the_error(page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#result[data-state=error]", timeout=30_000)
    assert "415" in page.text_content("#error") and "not an image" in page.text_content("#error")
