"""Seeded rendering: captcha 0.7 draws from `secrets`, and our stand-in makes every image reproducible."""

import random
import secrets

import captcha.image

from captchagen.config import GenerationConfig, resolve
from captchagen.render import Renderer, image_rng, sample_label

CONFIG = GenerationConfig(n=10, width=120, height=40)


def test_the_same_index_renders_the_same_bytes_in_a_fresh_renderer():
    first = Renderer(resolve(CONFIG)).image(3)
    second = Renderer(resolve(CONFIG)).image(3)
    assert first == second
    assert first[1][:8] == b"\x89PNG\r\n\x1a\n"


def test_other_indices_and_seeds_give_other_images():
    r = Renderer(resolve(CONFIG))
    assert r.image(3)[1] != r.image(4)[1]
    other_seed = Renderer(resolve(GenerationConfig(n=10, width=120, height=40, seed=1)))
    assert other_seed.image(3)[1] != r.image(3)[1]


def test_seeding_random_alone_does_not_make_captcha_reproducible():
    """The problem the stand-in solves: captcha 0.7 ignores `random`."""
    c = captcha.image.ImageCaptcha(120, 40)
    random.seed(0)
    a = c.generate_image("AB").tobytes()
    random.seed(0)
    b = c.generate_image("AB").tobytes()
    assert a != b


def test_secrets_is_restored_after_rendering():
    Renderer(resolve(CONFIG)).image(0)
    assert captcha.image.secrets is secrets


def test_labels_respect_length_and_alphabet_and_cover_every_length():
    lengths = set()
    for i in range(400):
        label = sample_label(image_rng(0, i), "XYZ", 2, 5)
        assert set(label) <= set("XYZ")
        lengths.add(len(label))
    assert lengths == {2, 3, 4, 5}
