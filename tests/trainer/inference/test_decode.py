"""Decoding: exact string probabilities, and a prefix beam search that merges alignments."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from captchagen.alphabet import Alphabet
from trainer.inference.decode import decode, greedy, prefix_beam_search, string_log_probs

AB = Alphabet("AB")


def brute_force(probs: torch.Tensor, alphabet: Alphabet) -> dict[str, float]:
    """P(string) by enumerating every alignment of probs [T, C]."""
    totals: dict[str, float] = {}
    t, c = probs.shape
    for path in itertools.product(range(c), repeat=t):
        p = math.prod(float(probs[i, k]) for i, k in enumerate(path))
        text = greedy(torch.eye(c)[list(path)][:, None], alphabet)[0]  # the path as one-hot logits [T, 1, C]
        totals[text] = totals.get(text, 0.0) + p
    return totals


def random_log_probs(seed: int, t: int = 4, c: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(t, c, generator=g) * 2).log_softmax(1)


@pytest.mark.parametrize("seed", range(5))
def test_string_probability_is_the_sum_over_alignments(seed):
    log_probs = random_log_probs(seed)
    truth = brute_force(log_probs.exp(), AB)
    texts = sorted(truth)
    got = string_log_probs(log_probs[:, None].expand(-1, len(texts), -1), texts, AB).exp()
    for text, p in zip(texts, got.tolist(), strict=True):
        assert p == pytest.approx(truth[text], rel=1e-4, abs=1e-7)
    assert sum(truth.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_a_wide_beam_finds_every_string_with_its_exact_probability(seed):
    log_probs = random_log_probs(seed)
    truth = brute_force(log_probs.exp(), AB)
    found = {AB.decode(list(p)): math.exp(s) for p, s in prefix_beam_search(log_probs, beam=100)}
    assert found.keys() == truth.keys()
    for text, p in found.items():
        assert p == pytest.approx(truth[text], rel=1e-6)
    best = max(truth, key=truth.get)
    assert AB.decode(list(prefix_beam_search(log_probs, beam=100)[0][0])) == best


def test_beam_merges_alignments_where_the_best_path_is_wrong():
    # Two frames, each: blank 0.6, 'A' 0.4. Best path is blank-blank (""), P = 0.36,
    # but "A" has three alignments (A-, -A, AA): P = 0.24 + 0.24 + 0.16 = 0.64.
    probs = torch.tensor([[0.6, 0.4, 1e-9], [0.6, 0.4, 1e-9]])
    logits = probs.log()[:, None, :]  # [T, N=1, C]
    assert greedy(logits, AB) == [""]
    ((greedy_text, greedy_conf),) = decode(logits, AB, beam=0)
    ((beam_text, beam_conf),) = decode(logits, AB, beam=4)
    assert (greedy_text, beam_text) == ("", "A")
    assert greedy_conf == pytest.approx(0.36, rel=1e-4) and beam_conf == pytest.approx(0.64, rel=1e-4)


@pytest.mark.parametrize("seed", range(20))
def test_beam_result_is_never_less_probable_than_greedy(seed):
    logits = torch.randn(12, 3, 5, generator=torch.Generator().manual_seed(seed)) * 3
    alphabet = Alphabet("ABCD")
    greedy_confidences = [conf for _, conf in decode(logits, alphabet)]
    beam_confidences = [conf for _, conf in decode(logits, alphabet, beam=3)]
    for g_conf, b_conf in zip(greedy_confidences, beam_confidences, strict=True):
        assert b_conf >= g_conf * (1 - 1e-6)
        assert 0.0 <= g_conf <= 1.0 and 0.0 <= b_conf <= 1.0
