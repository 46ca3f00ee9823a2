"""Turning per-frame CTC logits into strings, and scoring strings exactly.

Confidence is the probability the model gives the predicted string: the sum over every frame alignment
that collapses to it (the CTC forward algorithm, via torch's ctc_loss), a number between 0 and 1.

Reading under a known length (`lengths`, shortest and longest) finds the most probable string of an allowed
length, not greedy's string filtered afterwards: the best alignment of each allowed length (a dynamic
programme over frames, characters emitted so far and the last symbol) and, with a beam, the beam's prefixes
of allowed lengths, all rescored exactly.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from captchagen.alphabet import BLANK, Alphabet

NEG_INF = float("-inf")


def suppressed_classes(alphabet: Alphabet, chars: str | None) -> torch.Tensor | None:
    """bool [C]: the classes of `alphabet` outside `chars` (never the blank), which a reading restricted to
    `chars` never outputs; None when nothing is ruled out (or `chars` is None)."""
    if chars is None:
        return None
    mask = torch.ones(alphabet.num_classes, dtype=torch.bool)
    mask[BLANK] = False
    mask[alphabet.encode("".join(c for c in chars if c in alphabet))] = False
    return mask if bool(mask.any()) else None


def case_folds(alphabet: Alphabet, chars: str | None) -> list[tuple[int, int]]:
    """(lower-case class, upper-case class) of each letter of `chars` (None: the whole alphabet) read in both
    cases: what a site that ignores case counts as one character (fold_cases)."""
    read = alphabet.chars if chars is None else chars
    pairs = [(c, c.upper()) for c in read if c.islower() and c.upper() != c and c.upper() in read]
    return [(alphabet.encode(lo)[0], alphabet.encode(up)[0]) for lo, up in pairs if lo in alphabet and up in alphabet]


def case_table(alphabet: Alphabet, folds: list[tuple[int, int]]) -> dict[int, str]:
    """str.translate table: each folded upper-case letter to its lower case (how a reading under `folds`
    writes it, and how a label is compared with one)."""
    return str.maketrans({alphabet.decode([up]): alphabet.decode([lo]) for lo, up in folds})


def fold_cases(logits: torch.Tensor, folds: list[tuple[int, int]]) -> torch.Tensor:
    """Log-probabilities over the last dimension of `logits` with each fold's two cases summed into its
    lower-case class (the upper-case one never read): a letter's probability whatever its case. Any
    layout whose last dimension is the classes; unchanged log_softmax where there is no fold."""
    out = logits.float().log_softmax(-1)
    if not folds:
        return out
    kept, folded = (torch.tensor(x, device=out.device) for x in zip(*folds, strict=True))
    summed = torch.logaddexp(out.index_select(-1, kept), out.index_select(-1, folded))
    upper = torch.zeros(out.shape[-1], dtype=torch.bool, device=out.device).index_fill(0, folded, True)
    # out of place: training backpropagates through it
    return out.index_copy(-1, kept, summed).masked_fill(upper, NEG_INF)


def under_rule(
    logits: torch.Tensor, suppressed: torch.Tensor | None, folds: list[tuple[int, int]] | None
) -> torch.Tensor:
    """`logits` as a reading rule allows them: the `suppressed` classes (suppressed_classes) never read, then
    `folds`' cases as one (fold_cases: log-probabilities); unchanged where the rule rules nothing out."""
    if suppressed is not None:
        logits = logits.float().masked_fill(suppressed.to(logits.device), NEG_INF)
    return fold_cases(logits, folds) if folds else logits


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


def prefix_beam_search(
    log_probs: torch.Tensor, beam: int, longest: int | None = None
) -> list[tuple[tuple[int, ...], float]]:
    """CTC prefix beam search over log_probs [T, C] of one image.

    Keeps the `beam` best label prefixes; a prefix's score sums every alignment that collapses to it, split
    into alignments ending in a blank and in its last character, so prefixes that collapse to the same
    string are merged rather than competing. A prefix never grows past `longest` characters. Returns
    (class indices, log score) pairs, best first."""
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
            for c in top if longest is None or len(prefix) < longest else ():
                extended = nxt[prefix + (c,)]
                # the same character twice needs a blank between, so only blank-ending alignments extend it
                source = pb if prefix and prefix[-1] == c else total
                extended[1] = _logsumexp(extended[1], source + frame[c])
        scored = [(_logsumexp(*s), prefix, s) for prefix, s in nxt.items()]
        # impossible prefixes (a repeat with no blank-ending alignment to extend) score -inf: never keep them
        ranked = sorted((x for x in scored if x[0] > NEG_INF), key=lambda x: x[0], reverse=True)[:beam]
        beams = {prefix: (s[0], s[1]) for _, prefix, s in ranked}
    return sorted(((p, _logsumexp(*s)) for p, s in beams.items()), key=lambda x: x[1], reverse=True)


def best_paths_by_length(
    log_probs: torch.Tensor, longest: int, shortest: int = 0
) -> list[list[tuple[int, ...] | None]]:
    """For each image of log_probs [T, N, C], the string (class indices) of the most probable single
    alignment that collapses to exactly k characters, for k = shortest..longest (None where no alignment has
    k), as a list indexed by k - shortest.

    Viterbi over states (characters emitted so far, the frame's symbol): a blank or a repeat of the last
    symbol keeps the count, any other character adds one. One pass over the frames, vectorised over images,
    counts and classes; the back-pointers are walked once per answer."""
    lp = log_probs.float().cpu().numpy().astype(np.float64)  # [T, N, C]
    t_len, n_img, n_cls = lp.shape
    counts = longest + 1
    score = np.full((n_img, counts, n_cls), -np.inf)
    score[:, 0, BLANK] = 0.0  # before the first frame: nothing emitted, as after a blank
    came_from_count = np.zeros((t_len, n_img, counts, n_cls), dtype=np.int16)
    came_from_symbol = np.zeros((t_len, n_img, counts, n_cls), dtype=np.int16)
    classes = np.arange(n_cls)[None, None, :]
    count_index = np.arange(counts)[None, :, None]
    for t in range(t_len):
        # a blank: from any symbol, same count
        first = score.argmax(axis=2)[:, :, None]  # [N, K, 1]: each count's best symbol
        first_score = np.take_along_axis(score, first, 2)
        # a character c: repeating c (same count) or, from count k-1, the best symbol but c (a new character)
        without_first = score.copy()
        np.put_along_axis(without_first, first, -np.inf, 2)
        second = without_first.argmax(axis=2)[:, :, None]
        second_score = np.take_along_axis(without_first, second, 2)
        is_first = classes == first
        advance = np.full_like(score, -np.inf)
        advance[:, 1:] = np.where(is_first, second_score, first_score)[:, :-1]
        advance_symbol = np.zeros(score.shape, dtype=np.int16)
        advance_symbol[:, 1:] = np.where(is_first, second, first)[:, :-1]
        takes_new = advance > score
        takes_new[:, :, BLANK] = False
        new = np.where(takes_new, advance, score)
        new[:, :, BLANK] = first_score[:, :, 0]
        came_from_count[t] = count_index - takes_new
        came_from_symbol[t] = np.where(takes_new, advance_symbol, classes)
        came_from_symbol[t, :, :, BLANK] = first[:, :, 0]
        score = new + lp[t][:, None, :]
    results: list[list[tuple[int, ...] | None]] = []
    for n in range(n_img):
        per_length: list[tuple[int, ...] | None] = []
        for k in range(shortest, counts):
            symbol = int(score[n, k].argmax())
            if not np.isfinite(score[n, k, symbol]):
                per_length.append(None)
                continue
            emitted, count = [], k
            for t in range(t_len - 1, -1, -1):
                before = int(came_from_count[t, n, count, symbol])
                if before < count:
                    emitted.append(symbol)
                count, symbol = before, int(came_from_symbol[t, n, count, symbol])
            per_length.append(tuple(reversed(emitted)))
        results.append(per_length)
    return results


def decode(
    logits: torch.Tensor, alphabet: Alphabet, beam: int = 0, lengths: tuple[int, int] | None = None
) -> list[tuple[str, float]]:
    """(text, confidence) per image of logits [T, N, C]. beam <= 1 is greedy; otherwise prefix beam search,
    whose candidates and the greedy string are rescored exactly and the most probable kept, so its answer
    is never less probable than greedy's. `lengths` (shortest, longest): only strings of those lengths are
    read (see the module's notes); an image with none possible reads "" at confidence 0."""
    log_probs = logits.float().log_softmax(2).cpu()
    texts = greedy(logits, alphabet)
    if lengths is None and beam <= 1:
        scores = string_log_probs(log_probs, texts, alphabet)
        return [(text, float(score.exp())) for text, score in zip(texts, scores, strict=True)]
    shortest, longest = lengths or (0, None)
    paths = best_paths_by_length(log_probs, longest, shortest) if longest is not None else None
    candidates: list[list[str]] = []
    for n, read in enumerate(texts):
        mine = [read] if shortest <= len(read) <= (longest or len(read)) else []
        if paths is not None:
            mine += [alphabet.decode(list(p)) for p in paths[n] if p is not None]
        if beam > 1:
            found = prefix_beam_search(log_probs[:, n], beam, longest)
            mine += [alphabet.decode(list(p)) for p, _ in found if len(p) >= shortest]
        candidates.append(list(dict.fromkeys(mine)))
    return _most_probable(log_probs, candidates, alphabet)


def _most_probable(log_probs: torch.Tensor, candidates: list[list[str]], alphabet: Alphabet) -> list[tuple[str, float]]:
    """Per image of log_probs [T, N, C], the candidate the model gives the highest exact probability, scored
    in one pass over every image's candidates; ("", 0.0) for an image with none."""
    columns = [n for n, mine in enumerate(candidates) for _ in mine]
    flat = [text for mine in candidates for text in mine]
    scores = string_log_probs(log_probs[:, columns], flat, alphabet).tolist() if flat else []
    results, at = [], 0
    for mine in candidates:
        if not mine:
            results.append(("", 0.0))
            continue
        best = max(range(len(mine)), key=lambda i: scores[at + i])
        results.append((mine[best], math.exp(scores[at + best])))
        at += len(mine)
    return results
