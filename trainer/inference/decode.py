"""Turning per-frame CTC logits into strings, and scoring strings exactly.

Confidence is the probability the model gives the predicted string: the sum over every frame alignment
that collapses to it (the CTC forward algorithm, via torch's ctc_loss), a number between 0 and 1.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F

from captchagen.alphabet import BLANK, Alphabet

NEG_INF = float("-inf")


def greedy(logits: torch.Tensor, alphabet: Alphabet) -> list[str]:
    """Best-path decoding of logits [T, N, C]: argmax per frame, merge repeats, drop blanks."""
    best = logits.argmax(dim=2).T.cpu()  # [N, T]
    keep = best != BLANK
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    return [alphabet.decode(row[mask].tolist()) for row, mask in zip(best, keep, strict=False)]


def ctc_nll(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    reduction: str = "none",
    zero_infinity: bool = False,
) -> torch.Tensor:
    """-log P(targets | image) from log_probs [T, N, C], every frame used, in fp32 on log_probs' device."""
    t, n, _ = log_probs.shape
    dev = log_probs.device
    input_lengths = torch.full((n,), t, dtype=torch.long, device=dev)
    return F.ctc_loss(
        log_probs.float(),
        targets.to(dev),
        input_lengths,
        target_lengths.to(dev),
        blank=BLANK,
        reduction=reduction,
        zero_infinity=zero_infinity,
    )


def string_log_probs(log_probs: torch.Tensor, texts: list[str], alphabet: Alphabet) -> torch.Tensor:
    """log P(text | image) for each column of log_probs [T, N, C] and its text, summed over alignments.
    An impossible text (too long for the frames) scores -inf, so its confidence is 0."""
    encoded = [alphabet.encode(text) for text in texts]
    targets = torch.tensor([i for e in encoded for i in e], dtype=torch.long)
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    return -ctc_nll(log_probs.cpu(), targets, lengths)


def _logsumexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def prefix_beam_search(log_probs: torch.Tensor, beam: int) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search over log_probs [T, C] of one image.

    Keeps the `beam` best label prefixes; a prefix's score sums every alignment that collapses to it, split
    into alignments ending in a blank and in its last character, so prefixes that collapse to the same
    string are merged rather than competing. Returns (class indices, log score) pairs, best first."""
    lp = log_probs.float().cpu().tolist()
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix -> (ends blank, ends char)
    classes = range(1, len(lp[0]))
    for frame in lp:
        # Only characters that could enter the beam this frame: the top `beam` of the frame.
        top = sorted(classes, key=frame.__getitem__, reverse=True)[:beam]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pc) in beams.items():
            total = _logsumexp(pb, pc)
            entry = nxt[prefix]
            entry[0] = _logsumexp(entry[0], total + frame[BLANK])  # a blank keeps the prefix
            if prefix:  # repeating the last character without a blank between keeps the prefix too
                entry[1] = _logsumexp(entry[1], pc + frame[prefix[-1]])
            for c in top:
                extended = nxt[prefix + (c,)]
                # the same character twice needs a blank between, so only blank-ending alignments extend it
                source = pb if prefix and prefix[-1] == c else total
                extended[1] = _logsumexp(extended[1], source + frame[c])
        scored = [(_logsumexp(*s), prefix, s) for prefix, s in nxt.items()]
        # impossible prefixes (a repeat with no blank-ending alignment to extend) score -inf: never keep them
        ranked = sorted((x for x in scored if x[0] > NEG_INF), key=lambda x: x[0], reverse=True)[:beam]
        beams = {prefix: (s[0], s[1]) for _, prefix, s in ranked}
    return sorted(((p, _logsumexp(*s)) for p, s in beams.items()), key=lambda x: x[1], reverse=True)


def decode(logits: torch.Tensor, alphabet: Alphabet, beam: int = 0) -> list[tuple[str, float]]:
    """(text, confidence) per image of logits [T, N, C]. beam <= 1 is greedy; otherwise prefix beam search,
    whose candidates and the greedy string are rescored exactly and the most probable kept, so its answer
    is never less probable than greedy's."""
    log_probs = logits.float().log_softmax(2).cpu()
    texts = greedy(logits, alphabet)
    if beam > 1:
        for n in range(log_probs.shape[1]):
            candidates = [alphabet.decode(list(p)) for p, _ in prefix_beam_search(log_probs[:, n], beam)]
            candidates = list(dict.fromkeys([texts[n], *candidates]))
            scores = string_log_probs(log_probs[:, [n] * len(candidates)], candidates, alphabet)
            texts[n] = candidates[int(scores.argmax())]
    scores = string_log_probs(log_probs, texts, alphabet)
    return [(text, float(score.exp())) for text, score in zip(texts, scores, strict=True)]
