"""How sure a measured accuracy is: the Wilson score interval, and a warning for sets too small to trust
(torch-free, so the CLI can use it)."""

from __future__ import annotations

import math

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval
SMALL_SET = 100  # below this many images an accuracy is worth a warning


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of the accuracy correct/n: unlike p ± z·sqrt(p(1-p)/n) it does not
    shrink to nothing at 0% or 100%, which is where a handful of images lands."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def small_set_warning(correct: int, n: int, what: str = "validation") -> str | None:
    """A line saying how little `n` images can tell, or None when there are enough."""
    if n >= SMALL_SET:
        return None
    lo, hi = wilson(correct, n)
    return (
        f"only {n} {what} images: the 95% interval of that {100 * correct / max(1, n):.1f}% is {100 * lo:.0f}% to "
        f"{100 * hi:.0f}%; use {SMALL_SET} or more images to trust the figure"
    )
