"""Every figure of the book passes `figures.check` before it is saved; each rule fails when broken."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from specbook import figures  # noqa: E402


def test_a_clean_figure_saves_as_png_at_200_dpi_and_svg_with_text(output_root):
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [1, 2, 3], "o-", label="CoT")
    ax.plot([1, 2, 3], [1.5, 2.5, 3.5], "o-", label="CoD")
    ax.set(title="two styles", xlabel="K", ylabel="tokens")
    ax.legend(loc="lower right")
    png, svg = figures.save(fig, "smoke", "clean")
    assert Image.open(png).info["dpi"][0] == pytest.approx(200, abs=1)
    text = svg.read_text()
    assert "<text" in text and "profile smoke" in text  # the stamp is text, not glyph outlines


def _fig(panels=1):
    fig, axes = plt.subplots(1, panels, squeeze=False)
    return fig, list(axes[0])


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: _titled_panels_under_a_suptitle(), "sits on top of panel titles"),
        (lambda: _two_lines_no_legend(), "plots 2 labelled things without a legend"),
        (lambda: _legend_over_points(), "a legend covers the data of panel 0"),
        (lambda: _misspelt("COT target"), "'COT target' spells 'COT': use CoT or CoD"),
        (lambda: _misspelt("cod"), "spells 'cod'"),
    ],
)
def test_each_rule_is_enforced(build, message):
    with pytest.raises(figures.FigureError, match=message):
        figures.check(build())


def _titled_panels_under_a_suptitle():
    fig, axes = _fig(2)
    for ax in axes:
        ax.set_title("panel")
    fig.suptitle("figure")
    return fig


def _two_lines_no_legend():
    fig, (ax,) = _fig()
    ax.plot([0, 1], [0, 1], label="a")
    ax.plot([0, 1], [1, 0], label="b")
    return fig


def _legend_over_points():
    fig, (ax,) = _fig()
    xs = [i / 10 for i in range(11)]
    ax.plot(xs, [0.9] * 11, "o", label="high")  # a row of points along the top, where the legend goes
    ax.plot(xs, [0.1] * 11, "o", label="low")
    ax.legend(loc="upper left")
    return fig


def _misspelt(label):
    fig, (ax,) = _fig()
    ax.plot([0, 1], [0, 1], label=label)
    ax.legend(loc="lower right")
    return fig


def test_the_pipeline_figure_marks_the_chapter_and_says_itself_in_words():
    fig = figures.pipeline("02")
    labels = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    assert all(f"{n} {title}" in labels for n, title, _ in figures.PIPELINE)
    plt.close(fig)
    alt = figures.pipeline_alt_text("02")
    assert all(title in alt for _, title, _ in figures.PIPELINE) and alt.endswith("This chapter: 02 training.")
    html = figures.where_we_are("03").data
    assert html.startswith('<img src="data:image/svg+xml;base64,') and "This chapter: 03 distillation." in html


def test_speculative_steps_are_coloured_as_in_leviathan_et_al():
    from specbook.specdec import Step

    steps = [Step([1, 2], 9, 5), Step([3], None, 7)]
    html = figures.steps_html(steps, lambda t: f"t{t}").data
    assert html.count(f"background:{figures.TOKEN_COLORS['accepted']}") == 3 + 1  # three accepted tokens and the legend
    assert "line-through" in html and ">t9<" in html  # the rejected proposal, struck out
    answer = figures.answer_html(steps, lambda t: f"t{t}").data
    assert [s for s in ("t1", "t2", "t5", "t3", "t7") if f">{s}<" in answer] == ["t1", "t2", "t5", "t3", "t7"] and ">t9<" not in answer
    assert "no steps" in figures.steps_html([], str).data
