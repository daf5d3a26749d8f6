import pytest

from specbook.answers import as_number, extract_answer, is_correct, last_boxed


@pytest.mark.parametrize(
    "predicted, gold, expected",
    [
        ("18", "18", True),
        ("1,000", "1000", True),
        ("1000", "1,000", True),
        ("$18", "18", True),
        ("18.00", "18", True),
        ("17.99", "18", False),
        ("2, -2", "2", False),
        ("2", "2, -2", False),
        ("-2, 2", "2, -2", True),
        ("3", "3\\sqrt{2}", False),
        ("3\\sqrt{2}", "3", False),
        ("\\sqrt{18}", "3\\sqrt{2}", True),
        ("x=5", "5", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac{1}{2}", "0.5", True),
        ("3/4", "\\dfrac{3}{4}", True),
        ("", "5", False),
        (None, "5", False),
        ("five", "5", False),
    ],
)
def test_is_correct_on_real_answer_strings(predicted, gold, expected):
    assert is_correct(predicted, gold) is expected


def test_extract_answer_prefers_the_last_answer_line():
    text = "3 ducks: 3*2=6\nAnswer: 5\n2 dogs: 2*4=8\nAnswer: 14."
    assert extract_answer(text) == "14"


def test_extract_answer_falls_back_to_boxed_then_gsm8k_marker():
    assert extract_answer("so $x = \\boxed{\\frac{1}{2}}$ done") == "\\frac{1}{2}"
    assert extract_answer("16 - 3 = 13\n#### 13") == "13"
    assert extract_answer("no answer here") is None


def test_last_boxed_balances_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{a}{b}}") == "\\frac{a}{b}"
    assert last_boxed("\\boxed{unclosed") is None


def test_as_number_is_exact():
    assert as_number("1,234.5") * 2 == 2469
    assert as_number("12,34") is None
    assert as_number("3\\sqrt{2}") is None
