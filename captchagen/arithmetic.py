"""Arithmetic captchas: an image shows `7+12=?` and the site asks for its answer, 19.

A model reads the expression, character by character, as it reads any captcha (CTC has nothing to align an
answer with); the answer is worked out from what it read. So a dataset's label is the expression as drawn,
`=?` included, and `answer` turns a reading back into a number, or None when the reading is not an
expression (a misread operator, a missing digit): never a guess.

Operands are 0-20 for `+` and `-` (a difference is never negative: the larger operand comes first), 0-9
for a product, as sites draw them. Torch-free.
"""

from __future__ import annotations

import random
import re
import string

from captchagen.errors import BadInput

PRODUCT = "×*x"  # the signs sites draw a product with
OPERATORS = "+-" + PRODUCT
DEFAULT = "+-"
ASKS = "=?"
LARGEST = {"+": 20, "-": 20, **dict.fromkeys(PRODUCT, 9)}


def problem(operators: str) -> str | None:
    """What is wrong with `operators` (one or more of OPERATORS, each once), or None."""
    if not operators:
        return f"needs at least one operator of {OPERATORS!r}"
    unknown = sorted(set(operators) - set(OPERATORS))
    if unknown:
        return f"has {', '.join(map(repr, unknown))}, which is not an operator; use some of {OPERATORS!r}"
    if len(set(operators)) != len(operators):
        return f"names an operator twice: {operators!r}"
    return None


def check(operators: str) -> str:
    """The operators, checked (BadInput naming the `arithmetic` setting)."""
    wrong = problem(operators)
    if wrong:
        raise BadInput(f"`arithmetic` {wrong}", param="arithmetic")
    return operators


def alphabet(operators: str) -> str:
    """Every character an expression with these operators can hold."""
    return string.digits + check(operators) + ASKS


def lengths(operators: str) -> tuple[int, int]:
    """The shortest and the longest expression (`0+0=?` is 5 characters; `20+20=?` is 7)."""
    widest = max(len(str(LARGEST[op])) for op in check(operators))
    return 1 + 1 + 1 + len(ASKS), 2 * widest + 1 + len(ASKS)


def sample(rng: random.Random, operators: str) -> str:
    """An expression drawn with `rng`: the operator uniform over `operators`, each operand uniform over
    0 to its operator's largest."""
    op = rng.choice(operators)
    a, b = rng.randint(0, LARGEST[op]), rng.randint(0, LARGEST[op])
    if op == "-" and a < b:
        a, b = b, a
    return f"{a}{op}{b}{ASKS}"


_EXPRESSION = re.compile(r"^(\d+)([" + re.escape(OPERATORS) + r"])(\d+)(?:=\??)?$")


def answer(text: str) -> int | None:
    """The answer to a read expression (`7+12=?` -> 19; the `=?` may be missing), or None when `text` is not
    one number, one operator and another number."""
    m = _EXPRESSION.match(text)
    if m is None:
        return None
    a, op, b = int(m[1]), m[2], int(m[3])
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    return a * b
