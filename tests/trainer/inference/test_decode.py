"""Decoding: exact string probabilities, and a prefix beam search that merges alignments."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from captchagen.alphabet import Alphabet
from trainer.inference.decode import best_paths_by_length, decode, greedy, prefix_beam_search, string_log_probs

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


def brute_force_paths(probs: torch.Tensor, alphabet: Alphabet) -> dict[str, float]:
    """The probability of the single most probable alignment of each string, by enumeration."""
    best: dict[str, float] = {}
    t, c = probs.shape
    for path in itertools.product(range(c), repeat=t):
        p = math.prod(float(probs[i, k]) for i, k in enumerate(path))
        text = greedy(torch.eye(c)[list(path)][:, None], alphabet)[0]
        best[text] = max(best.get(text, 0.0), p)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_the_best_alignment_of_each_length_is_found(seed):
    log_probs = random_log_probs(seed, t=5, c=4)
    abc = Alphabet("ABC")
    truth = brute_force_paths(log_probs.exp(), abc)
    (per_length,) = best_paths_by_length(log_probs[:, None], longest=5)  # k = 0..5
    for k, found in enumerate(per_length):
        of_k = {text: p for text, p in truth.items() if len(text) == k}
        assert (found is None) == (not of_k)
        if found is not None:  # the found string's best alignment is the best of its length (ties aside)
            assert truth[abc.decode(list(found))] == pytest.approx(max(of_k.values()), rel=1e-9)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("lengths", [(2, 2), (1, 2), (3, 4)])
def test_reading_under_a_length_gives_the_most_probable_string_of_that_length(seed, lengths):
    log_probs = random_log_probs(seed, t=5, c=3)
    truth = brute_force(log_probs.exp(), AB)
    allowed = {text: p for text, p in truth.items() if lengths[0] <= len(text) <= lengths[1]}
    best = max(allowed, key=allowed.get)
    ((text, conf),) = decode(log_probs[:, None], AB, beam=16, lengths=lengths)
    assert lengths[0] <= len(text) <= lengths[1]
    assert allowed[text] == pytest.approx(allowed[best], rel=1e-6)  # the best, or one as probable
    assert conf == pytest.approx(allowed[text], rel=1e-4)
    # greedy under the length: a string of the length, never one the model finds less probable than the
    # best single alignment of an allowed length
    ((text0, conf0),) = decode(log_probs[:, None], AB, lengths=lengths)
    assert lengths[0] <= len(text0) <= lengths[1]
    assert conf0 >= max(brute_force_paths(log_probs.exp(), AB)[t] for t in allowed) * (1 - 1e-6)


def test_a_length_constraint_is_not_a_filter_after_greedy():
    # Greedy reads "A" (one character); asked for two, the answer is the best two-character string, not
    # greedy's reading refused.
    probs = torch.tensor([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    logits = probs.log()[:, None, :]
    assert decode(logits, AB)[0][0] == "AB"
    ((text, conf),) = decode(logits, AB, lengths=(1, 1))
    assert text in {"A", "B"} and len(text) == 1 and conf > 0


def test_an_impossible_length_reads_nothing_at_zero_confidence():
    logits = random_log_probs(0, t=3, c=3)[:, None]
    assert decode(logits, AB, lengths=(5, 6)) == [("", 0.0)]
