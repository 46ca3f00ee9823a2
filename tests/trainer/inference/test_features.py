"""What a reading model sees of images (trainer.inference.features), as fit-style matches it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from trainer import bundled
from trainer.inference.features import GROUPS, SeenBy


def _captchas(n: int, size: tuple[int, int]) -> list[Image.Image]:
    from captchagen.config import GenerationConfig, resolve
    from captchagen.render import Renderer

    renderer = Renderer(resolve(GenerationConfig(width=size[0], height=size[1], min_len=4, max_len=4)))
    return [Image.open(io.BytesIO(renderer.image(i)[1])) for i in range(n)]


def test_a_model_sees_each_image_alike_in_any_batch_and_at_any_size():
    seen = SeenBy(bundled.named("base-v3"))
    images = _captchas(70, (200, 80))  # more than one batch
    all_at_once = seen(images)
    assert set(all_at_once) == set(GROUPS)
    assert all(v.shape[0] == 70 and v.ndim == 2 and np.isfinite(v).all() for v in all_at_once.values())
    alone = seen(images[65:])
    for g in GROUPS:
        np.testing.assert_allclose(alone[g], all_at_once[g][65:], rtol=1e-4, atol=1e-5)
    # two looks are told apart: a blank image is seen far from a captcha
    blank = seen([Image.new("RGB", (200, 80), "white")])["reader_lstm"][0]
    gap = np.abs(blank - all_at_once["reader_lstm"].mean(0)).mean()
    spread = all_at_once["reader_lstm"].std(0).mean()
    assert gap > spread
    small = seen(_captchas(2, (96, 32)))  # resized to what the model reads
    assert {g: v.shape[1] for g, v in small.items()} == {g: v.shape[1] for g, v in all_at_once.items()}
