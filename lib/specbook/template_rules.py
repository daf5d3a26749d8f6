"""The offline template teacher's text rules: a CoT and a CoD written from a gold solution.

- GSM format ('... #### answer', calculator tags <<a*b=c>>): CoT is the solution in one plain
  format; CoD one terse draft per step, every equation checked by evaluating it.
- Leg counting: both written from the example's metadata and reasoning-gym's legs-per-animal table.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass, field

from specbook.answers import final_answer_line
from specbook.problems import solution_steps


@dataclass
class Rationales:
    """What a teacher writes for one problem."""

    cot: str | None
    cod: str | None
    error: str | None = None  # why the teacher wrote nothing usable
    rules: dict = field(default_factory=dict)  # template teacher: how each CoD step was derived


# ------------------------------------------------------------------ arithmetic checks

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expression: str) -> float | None:
    """Value of a plain arithmetic expression (+ - * / parentheses, n% = n/100); None otherwise."""
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", expression.replace(",", ""))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        raise ValueError

    try:
        return walk(tree.body)
    except (ValueError, ZeroDivisionError, TypeError):
        return None


def equation_holds(equation: str) -> bool:
    """Every side of `a = b (= c ...)` evaluates to the same number (GSM rounds to cents)."""
    sides = equation.split("=")
    values = [evaluate(s) for s in sides]
    if len(sides) < 2 or any(v is None for v in values):
        return False
    return all(math.isclose(v, values[-1], rel_tol=1e-3, abs_tol=0.006) for v in values)


# ------------------------------------------------------------------ GSM-format solutions

_TAG = re.compile(r"<<([^<>]*)>>")
_LATEX = [
    (re.compile(r"\\frac\{([^{}]*)\}\{([^{}]*)\}"), r"(\1)/(\2)"),
    (re.compile(r"\\text\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\(times|cdot)"), "*"),
    (re.compile(r"\\div"), "/"),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\\$"), "$"),
    (re.compile(r"\\[()\[\]]"), ""),
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_NUM = re.compile(r"\d")


def _clean(text: str) -> str:
    for pattern, replacement in _LATEX:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def _compact(equation: str) -> str:
    return re.sub(r"\s+", "", equation).replace("$", "").replace("£", "").replace("€", "")


def inline_equations(sentence: str) -> list[str]:
    """Arithmetic equations written out in a sentence ('15 foot / 30 feet * 100% = 50%' ->
    '15/30*100%=50%'), kept only when they hold."""
    s = re.sub(r"[$£€]", "", sentence)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"(?<=\d)\s*[x×]\s*(?=\d)", "*", s).replace("÷", "/").replace("−", "-")
    s = re.sub(r"[A-Za-z]+/[A-Za-z]+|/[A-Za-z]+", " ", s)  # units such as inches/foot, /day
    s = re.sub(r"(?<=[\d)])\s*\(", "*(", s)  # 2(32+9) -> 2*(32+9)
    s = re.sub(r"[A-Za-z][A-Za-z'’-]*", " ", s)  # words go, numbers and operators stay
    found = []
    for run in re.findall(r"[\d.()+\-*/%=\s]+", s):
        tokens = re.findall(r"\d+(?:\.\d+)?%?|[()+\-*/=]", run)
        if "=" not in tokens:
            continue
        # The result is the first number after the last '='; numbers left of the equation that
        # came from other words ('the 94-minute call costs 17 + 12 = 29') are trimmed off.
        last_eq = len(tokens) - 1 - tokens[::-1].index("=")
        tokens = tokens[: last_eq + 2]
        for start in range(last_eq):
            equation = "".join(tokens[start:])
            if equation_holds(equation):
                found.append(equation)
                break
    return found


def number_draft(sentence: str, max_words: int = 5) -> str:
    """A terse note for a step that has numbers but no checkable equation: the clause with the
    first number, from two words before it, at most `max_words` words besides the numbers."""
    clauses = [c for c in re.split(r"[,;:]", sentence) if _NUM.search(c)]
    words = clauses[0].strip().rstrip(".").split()
    first = next(i for i, w in enumerate(words) if _NUM.search(w))
    kept, count = [], 0
    for w in words[max(0, first - 2) :]:
        is_number = bool(_NUM.search(w))
        if not is_number and count >= max_words:
            break
        count += not is_number
        kept.append(w)
    return " ".join(kept)


def gsm_rationales(solution: str, answer: str) -> Rationales:
    """CoT: the gold solution with calculator tags and LaTeX removed, one step per line, then the
    answer line. CoD: per step its equation from the calculator tags ('tag'), else the equation
    written in the sentence itself ('inline'), else a short note of its numbers ('note'); steps
    without numbers are left out ('skipped'). Every equation is checked before it is used."""
    cot_lines, cod_lines, rules = [], [], Counter()
    for line in solution_steps(solution):
        for sentence in _SENTENCE_END.split(line):
            tags = [_compact(_clean(t)) for t in _TAG.findall(sentence)]
            text = _clean(_TAG.sub("", sentence))
            if not text:
                continue
            cot_lines.append(text)
            tagged = [t for t in tags if equation_holds(t)]
            if tagged:
                cod_lines.append("; ".join(tagged))
                rules["tag"] += 1
            elif equations := inline_equations(text):
                cod_lines.append("; ".join(equations))
                rules["inline"] += 1
            elif _NUM.search(text):
                cod_lines.append(number_draft(text))
                rules["note"] += 1
            else:
                rules["skipped"] += 1
    end = final_answer_line(answer)
    return Rationales(cot="\n".join(cot_lines + [end]), cod="\n".join(cod_lines + [end]), rules=dict(rules))


# ------------------------------------------------------------------ leg counting


def leg_rationales(animals: dict[str, int], answer: str) -> Rationales:
    """One line per animal kind, legs per animal from reasoning-gym's own table; from the second
    line on, the line also adds that kind's legs to the total so far ('12 + 48 = 60'), so that
    every arithmetic step takes two operands, both written a few tokens before it (a sum of six
    numbers in one equation is what small models failed to learn; chapter 01 says more)."""
    from reasoning_gym.arithmetic.leg_counting import ANIMALS

    cot, cod, total = [], [], 0
    for i, (animal, count) in enumerate(animals.items()):
        legs = ANIMALS[animal]
        # the CoT says where each factor comes from, naming the animal once, in the singular as the
        # CoD does: lines that also repeat the question's plural ('The ants have ...') left the tiny
        # CoT targets naming the wrong animal from the second line on (chapter 01)
        kind_legs = count * legs
        cot_line = f"Each {animal} has {legs} legs: {count} * {legs} = {kind_legs} legs"
        cod_line = f"{animal} {count}*{legs}={kind_legs}"
        if i:
            cot_line += f"; total {total} + {kind_legs} = {total + kind_legs}"
            cod_line += f"; {total}+{kind_legs}={total + kind_legs}"
        total += kind_legs
        cot.append(cot_line + ".")
        cod.append(cod_line)
    end = final_answer_line(answer)
    return Rationales(cot="\n".join(cot + [end]), cod="\n".join(cod + [end]), rules={"metadata": len(cod)})  # a step per line
