from specbook.answers import extract_answer
from specbook.problems import Problem
from specbook.teachers import TemplateTeacher
from specbook.template_rules import equation_holds, evaluate, gsm_rationales, inline_equations, leg_rationales, number_draft

# A real GSM-Symbolic variant (template 0): its last step has no calculator tag.
REMORA = (
    "First, find the combined length of the remoras in inches: 90 inches/remora * 2 remoras = <<90*2=180>>180 inches.\n"
    "Then divide that number by 12 to convert it to feet: 180 inches / 12 inches/foot = <<180/12=15>>15 foot.\n"
    "Then divide the combined remora length in feet by the whale's length and multiply by 100% to express the "
    "answer as a percentage: 15 foot / 30 feet * 100% = 50%\n\n#### 50"
)


def test_gsm_rationales_exact_output_with_an_untagged_last_step():
    r = gsm_rationales(REMORA, "50")
    assert r.cod == "90*2=180\n180/12=15\n15/30*100%=50%\nAnswer: 50"
    assert r.cot.splitlines() == [
        "First, find the combined length of the remoras in inches: 90 inches/remora * 2 remoras = 180 inches.",
        "Then divide that number by 12 to convert it to feet: 180 inches / 12 inches/foot = 15 foot.",
        "Then divide the combined remora length in feet by the whale's length and multiply by 100% to express the "
        "answer as a percentage: 15 foot / 30 feet * 100% = 50%",
        "Answer: 50",
    ]
    assert r.rules == {"tag": 2, "inline": 1}


def test_gsm_rationales_without_any_tag_and_with_a_note_step():
    solution = "Ella finds 6 eggs.\nHer brother finds 6*2 = 12 eggs.\nTogether they have 6 + 12 = 18 eggs.\n#### 18"
    r = gsm_rationales(solution, "18")
    assert r.cod == "Ella finds 6 eggs\n6*2=12\n6+12=18\nAnswer: 18"
    assert r.rules == {"note": 1, "inline": 2}


def test_two_sentences_on_one_line_become_two_steps():
    solution = "On the third day, 336*3 = 1008 more people are infected. Therefore, there are 336 + 1008 = 1344 infected people.\n#### 1344"
    r = gsm_rationales(solution, "1344")
    assert r.cod == "336*3=1008\n336+1008=1344\nAnswer: 1344"
    assert len(r.cot.splitlines()) == 3


def test_inline_equations_are_checked_before_use():
    assert inline_equations("So in total, the 94-minute call would cost 17 + 12 = €29.") == ["17+12=29"]
    assert inline_equations("The room's perimeter is 2(32+9) = 82 feet") == ["2*(32+9)=82"]
    assert inline_equations("The total price is $290,000 + $20,300 = $310,300.") == ["290000+20300=310300"]
    assert inline_equations("He claims 2 + 2 = 5 apples.") == []
    assert inline_equations("We know that y = x + 30.") == []


def test_evaluate_and_equation_holds():
    assert evaluate("50%*50%") == 0.25
    assert evaluate("2**10") is None  # only + - * / are arithmetic here
    assert evaluate("__import__('os')") is None
    assert equation_holds("9/10=90%")
    assert equation_holds("10/3=3.33")  # GSM rounds to cents
    assert not equation_holds("10/3=3.4")


def test_number_draft_keeps_at_most_five_words():
    note = number_draft("Michael will round his roses up from £2.56 to £3, since the number following the 2 is 5 or higher.")
    assert note == "up from £2.56 to £3"


def test_leg_rationales_exact_output():
    r = leg_rationales({"duck": 3, "dog": 1, "spider": 2}, "26")
    assert r.cot == (
        "Each duck has 2 legs: 3 * 2 = 6 legs.\n"
        "Each dog has 4 legs: 1 * 4 = 4 legs; total 6 + 4 = 10.\n"
        "Each spider has 8 legs: 2 * 8 = 16 legs; total 10 + 16 = 26.\n"
        "Answer: 26"
    )
    assert r.cod == "duck 3*2=6\ndog 1*4=4; 6+4=10\nspider 2*8=16; 10+16=26\nAnswer: 26"
    one = leg_rationales({"cat": 2}, "8")
    assert (one.cot, one.cod) == ("Each cat has 4 legs: 2 * 4 = 8 legs.\nAnswer: 8", "cat 2*4=8\nAnswer: 8")


def test_template_teacher_states_the_gold_answer_in_both_styles():
    problems = [
        Problem("a", "easy", "q", "50", REMORA, "gsm_symbolic"),
        Problem("b", "easy", "q", "14", "", "leg_counting", meta={"animals": {"spider": 1, "cat": 1, "bird": 1}}),
    ]
    written = TemplateTeacher().write(problems)
    assert extract_answer(written["a"].cod) == "50"
    assert extract_answer(written["b"].cot) == "14" and written["b"].cod.splitlines()[-2] == "bird 1*2=2; 12+2=14"
