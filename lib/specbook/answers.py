"""Final answers: where a rationale states one, and a strict check against the gold answer.

Every rationale the book writes or generates ends with a line `Answer: <answer>`. Plain numbers
(GSM8K, GSM-Symbolic, leg counting) are compared exactly as rationals after removing thousands
separators and currency signs; anything else (MATH's LaTeX answers) goes through math-verify, which
tells `3\\sqrt{2}` from `3` and `2, -2` from `2`, and accepts `\\frac{1}{2}` for `0.5`.
"""

from __future__ import annotations

import re
from fractions import Fraction

ANSWER_PREFIX = "Answer:"
_ANSWER_LINE = re.compile(r"^\s*answer\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"^[-+]?[$£€]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$|^[-+]?[$£€]?\.\d+$")


def final_answer_line(answer: str) -> str:
    return f"{ANSWER_PREFIX} {answer}"


def extract_answer(text: str) -> str | None:
    """The answer a rationale states: its last `Answer:` line, else its last \\boxed{...}, else
    what follows a GSM8K `####`. None when it states none."""
    found = _ANSWER_LINE.findall(text)
    if found:
        return found[-1].rstrip(".").strip()
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    if "####" in text:
        return text.rsplit("####", 1)[1].strip() or None
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (or \\fbox{...}), braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


def as_number(answer: str) -> Fraction | None:
    """A plain decimal number ('1,000', '$18', '-2.50'), exactly; None for anything else."""
    s = answer.strip().rstrip(".").replace(" ", "")
    if not _NUMBER.match(s):
        return None
    return Fraction(re.sub(r"[$£€,]", "", s))


def is_correct(predicted: str | None, gold: str) -> bool:
    """Strict equality of a predicted final answer with the gold answer."""
    if predicted is None or not predicted.strip():
        return False
    p, g = as_number(predicted), as_number(gold)
    if g is not None and p is not None:
        return p == g
    from math_verify import parse, verify  # sympy is slow to import; only LaTeX answers need it

    gold_parsed = parse(f"${gold}$")
    pred_parsed = parse(f"${predicted}$")
    return bool(gold_parsed) and bool(pred_parsed) and verify(gold_parsed, pred_parsed)
