"""The label lengths a reading may have (torch-free: the command line's options take these types)."""

from __future__ import annotations

from typing import Literal

# What a reading command was told of the lengths to read: (shortest, longest), any length, or those the model
# was trained on (its default).
LengthChoice = tuple[int, int] | Literal["any", "trained"]


def chosen_lengths(choice: LengthChoice, trained: tuple[int, int] | None) -> tuple[int, int] | None:
    """The lengths to read under (None: any) for a choice and the lengths a model was trained on (None when
    it does not record them)."""
    if choice == "any":
        return None
    if choice == "trained":
        return trained
    return choice
