"""Figures: one look for the whole book (seaborn's theme and palette), saved as PNG at 200 dpi and
SVG with real text under figures/<profile>/, each stamped with profile, config and commit.

`save` checks every figure before it writes it, so that a figure fit for a blog is the only kind
the book can make: a title on top of panel titles, a legend over data, a panel that plots several
labelled things without a legend, or a misspelt style label ("COT") is an error that names the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from specbook.paths import figures_dir
from specbook.runinfo import stamp
from specbook.styles import LABELS, STYLES

sns.set_theme(context="notebook", style="whitegrid", palette="deep", font_scale=0.9)
matplotlib.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 200,
        "svg.fonttype": "none",  # text stays text in the SVG
        "svg.hashsalt": "specbook",  # stable SVG ids, so unchanged figures give unchanged files
        "legend.frameon": True,
        "legend.framealpha": 0.9,
    }
)
PALETTE = sns.color_palette("deep")
COLORS = {**dict(zip(STYLES, PALETTE, strict=False)), "base": (0.55, 0.55, 0.55)}  # a base model is grey

_NAMES = "|".join(LABELS.values())
_MISSPELT = re.compile(rf"\b(?!(?:{_NAMES})\b)(?i:{_NAMES})\b")  # "cot", "COD", ...: any spelling but the label's


class FigureError(ValueError):
    pass


def integer_ticks(*axes_and_which) -> None:
    """Whole-number ticks on axes that count things: integer_ticks((ax, "y"), (ax2, "x"))."""
    for ax, which in axes_and_which:
        getattr(ax, f"{which}axis").set_major_locator(MaxNLocator(integer=True))


def speedup_against_k(ax, sweep) -> None:
    """Measured speedup against K per level (95 % interval; a hollow marker: an unstable run) and,
    where costs were measured, the model's prediction. `sweep`: rows of `results.load_runs` for one
    target and draft, every K."""
    from specbook.profiles import LEVELS

    for i, level in enumerate(LEVELS):
        part = sweep[sweep.level == level].sort_values("k")
        color = PALETTE[i]
        yerr = [part.speedup - part.speedup_low, part.speedup_high - part.speedup]
        ax.errorbar(part.k, part.speedup, yerr=yerr, marker="o", capsize=2, color=color, label=f"{level}, measured")
        shaky = part[part.unstable]
        ax.plot(shaky.k, shaky.speedup, "o", markerfacecolor="white", color=color)
        if part.predicted_speedup.notna().any():
            ax.plot(part.k, part.predicted_speedup, "--", color=color, label=f"{level}, predicted")
    ax.axhline(1.0, color="0.3", lw=0.8)
    ax.set(xlabel="K (draft tokens per step)", ylabel="speedup over the target alone (95 % interval)")
    integer_ticks((ax, "x"))


def acceptance_by_position(results, k: int, profile: str):
    """Chapter 03: the share of steps accepting the i-th draft token, a panel per tuned target and
    level, a line per draft. `results`: a row per (level, style, draft) with columns "position i"."""
    import matplotlib.pyplot as plt

    from specbook.analysis import DRAFT_LABELS
    from specbook.distillation import METHODS
    from specbook.profiles import LEVELS

    colors = {"base": COLORS["base"], **dict(zip(METHODS, PALETTE[2:], strict=False))}
    positions = [f"position {i + 1}" for i in range(k)]
    fig, axes = plt.subplots(len(STYLES), len(LEVELS), figsize=(12, 6), sharex=True, sharey=True)
    for row_axes, style in zip(axes, STYLES, strict=True):
        for ax, level in zip(row_axes, LEVELS, strict=True):
            for _, row in results[(results.level == level) & (results["style"] == style)].iterrows():
                ax.plot(range(1, k + 1), row[positions].astype(float), marker="o", color=colors[row.draft], label=DRAFT_LABELS[row.draft])
            ax.set(title=f"{LABELS[style]} target, {level}", ylim=(0, 1), xticks=range(1, k + 1))
        row_axes[0].set_ylabel("share of steps\naccepting token i")
    for ax in axes[-1]:
        ax.set_xlabel("draft position i")
    if results["acceptance rate"].max() == 0:
        note_degenerate(axes[0][0], f"no draft token was accepted on the {profile} profile")
    every_draft = {line.get_label(): line for ax in axes.flat for line in ax.get_lines()}  # controls appear on some levels only
    fig.legend(every_draft.values(), every_draft.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def speedup_by_draft(at_k, k: int):
    """Chapter 04: each tuned target's speedup with every draft at K = k, per level (95 % interval;
    hatched: an unstable run). `at_k`: timed runs at K = k, targets by label."""
    import matplotlib.pyplot as plt

    from specbook.analysis import DRAFT_LABELS
    from specbook.distillation import METHODS
    from specbook.profiles import LEVELS

    colors = {"base": COLORS["base"], **dict(zip([*METHODS, "ngram"], PALETTE[2:], strict=False))}
    methods = list(DRAFT_LABELS)
    width = 0.8 / len(methods)
    fig, axes = plt.subplots(1, len(STYLES), figsize=(12, 3.8), sharey=True)
    for ax, style in zip(axes, STYLES, strict=True):
        for j, method in enumerate(methods):
            part = at_k[(at_k.target == LABELS[style]) & (at_k.draft == method)].set_index("level").reindex(list(LEVELS))
            x = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(LEVELS))]
            errors = [part.speedup - part.speedup_low, part.speedup_high - part.speedup]
            bars = ax.bar(x, part.speedup, width, yerr=errors, capsize=2, color=colors[method], label=DRAFT_LABELS[method])
            for bar, unstable in zip(bars, part.unstable.fillna(False), strict=True):
                bar.set_hatch("///" if unstable else None)
        ax.axhline(1.0, color="0.3", lw=0.8)
        ax.set(title=f"{LABELS[style]} target, K = {k}", xticks=range(len(LEVELS)), xticklabels=LEVELS)
    axes[0].set_ylabel("speedup over the target alone\n(median, 95 % interval)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def k_sweep(sweep, k: int):
    """Chapter 04: the CoD pair at every K. Left, measured and predicted speedup
    (`speedup_against_k`); right, tokens per target pass against E(α, K) at the α measured at K = k."""
    import matplotlib.pyplot as plt

    from specbook.metrics import expected_tokens_per_step
    from specbook.profiles import LEVELS

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    speedup_against_k(axes[0], sweep)
    axes[0].set(title="CoD target + distilled draft")
    ks = range(1, int(sweep.k.max()) + 1)
    for i, level in enumerate(LEVELS):
        part = sweep[sweep.level == level]
        alpha = part[part.k == k].alpha.iloc[0]
        axes[1].plot(part.k, part.mean_acceptance_length, "o", color=PALETTE[i], label=f"{level}, measured")
        expected = [expected_tokens_per_step(alpha, j) for j in ks]
        axes[1].plot(ks, expected, "-", color=PALETTE[i], alpha=0.6, label=f"{level}, E(α = {alpha:.2f}, K)")
    axes[1].set(xlabel="K (draft tokens per step)", ylabel="tokens per target pass", title="Acceptance length against E(α, K)")
    integer_ticks((axes[1], "x"))
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the panel: measured curves go anywhere
    fig.tight_layout()
    return fig


def accuracy_beside_reference(accuracy_table, profile: str):
    """Chapter 05: accuracy of the reference run's five configurations per level with 95 %
    intervals, this book's (left) beside the reference run's (right). `analysis.accuracy_table`."""
    import matplotlib.pyplot as plt
    import numpy as np

    from specbook.analysis import CONFIGS, config_label
    from specbook.profiles import LEVELS

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    width = 0.8 / len(CONFIGS)
    panels = [(axes[0], "", f"this book ({profile} profile)"), (axes[1], "reference ", "reference run (Qwen3-14B, GSM8K / MATH)")]
    for ax, prefix, title in panels:
        for j, (target, draft) in enumerate(CONFIGS):
            part = accuracy_table[accuracy_table.configuration == config_label(target, draft)].set_index("level").loc[list(LEVELS)]
            x = np.arange(len(LEVELS)) + (j - (len(CONFIGS) - 1) / 2) * width
            value = part[f"{prefix}accuracy"]
            errors = [value - part[f"{prefix}low"], part[f"{prefix}high"] - value]
            color, alpha = COLORS["base" if target == "base" else target], 1.0 if draft == "alone" else 0.55
            ax.bar(x, value, width, yerr=errors, capsize=2, color=color, alpha=alpha, label=config_label(target, draft))
        ax.set(title=title, xticks=range(len(LEVELS)), xticklabels=LEVELS, ylim=(0, 1))
    axes[0].set_ylabel("accuracy (95 % interval)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


def lengths_and_positions(lengths, per_position: dict, k: int):
    """Chapter 05. Left: tokens per answer, a box per target and level (`analysis.answer_lengths`).
    Right: acceptance by draft position, a line per tuned target and level
    (`per_position`: {(level, style): rates})."""
    import matplotlib.pyplot as plt

    from specbook.profiles import LEVELS

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    palette = {"base": COLORS["base"], **{LABELS[s]: COLORS[s] for s in STYLES}}
    sns.boxplot(data=lengths, x="level", y="tokens", hue="target", order=list(LEVELS), palette=palette, ax=axes[0], fliersize=2)
    axes[0].set(title="Tokens per answer", ylabel="tokens (whole test set)")
    for (level, style), rates in per_position.items():
        marker, ls = ("s", "-") if style == "cod" else ("o", "--")
        axes[1].plot(
            range(1, len(rates) + 1), rates, marker=marker, ls=ls, color=PALETTE[LEVELS.index(level)], label=f"{level}, {LABELS[style]}"
        )
    axes[1].set(
        title=f"Acceptance by draft position, K = {k}", xlabel="draft position", ylabel="share of passes that kept it", ylim=(0, 1.02)
    )
    integer_ticks((axes[1], "x"))
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def speedup_and_latency(sweep, latency, k: int):
    """Chapter 05. Left: the CoD pair's speedup against K (`speedup_against_k`). Right: latency of
    every timed request, alone and with the distilled draft at K = k (`analysis.latencies`)."""
    import matplotlib.pyplot as plt

    from specbook.profiles import LEVELS

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    speedup_against_k(axes[0], sweep)
    axes[0].set(title="CoD target + distilled draft")
    sns.boxplot(data=latency, x="level", y="latency_s", hue="run", order=list(LEVELS), ax=axes[1], fliersize=2)
    axes[1].set(title=f"Latency per request, alone and with the distilled draft (K = {k})", ylabel="seconds (the median round)")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def drafts_compared(drafts_table, k: int, levels: list[str]):
    """Chapter 05: speedup and acceptance rate per draft and tuned target at K = k, averaged over `levels`."""
    import matplotlib.pyplot as plt

    from specbook.analysis import DRAFT_LABELS

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, column, title in [(axes[0], "speedup", f"Speedup at K = {k}"), (axes[1], "acceptance_rate", f"Acceptance rate at K = {k}")]:
        palette = {LABELS[s]: COLORS[s] for s in STYLES}
        sns.barplot(
            data=drafts_table, x="draft", y=column, hue="target", order=list(DRAFT_LABELS.values()), palette=palette, errorbar=None, ax=ax
        )
        ax.set(title=f"{title}, mean over {', '.join(levels)}", xlabel="", ylabel=column.replace("_", " "))
        ax.tick_params(axis="x", labelsize=8)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0].axhline(1.0, color="0.3", lw=0.8)
    fig.tight_layout()
    return fig


def misses_drawn(rates, missed: dict):
    """Chapter 05. Left: misses per 100 tokens by the class of the target's token (`analysis.misses`'
    rates, all tuned targets). Right: where the misses fall in the answer ({style: rejections})."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    palette = {LABELS[s]: COLORS[s] for s in STYLES}
    sns.barplot(data=rates, x="class", y="misses per 100 tokens", hue="target", palette=palette, ax=axes[0])
    axes[0].set(title="Misses by the class of the target's token", xlabel="")
    for style, rejected in missed.items():
        if len(rejected):
            position = rejected["relative position"]
            axes[1].hist(
                position, bins=np.linspace(0, 1, 11), histtype="step", lw=1.5, density=True, color=COLORS[style], label=LABELS[style]
            )
        else:
            note_degenerate(axes[1], f"no rejection in the {LABELS[style]} runs")
    axes[1].set(title="Where misses fall in the answer", xlabel="position / answer length", ylabel="density")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def note_degenerate(ax, message: str) -> None:
    """Say on the panel that its data cannot show what the figure is for (e.g. all zeros on smoke)."""
    box = {"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"}
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.3", wrap=True, bbox=box)


def check(fig) -> None:
    """Raise FigureError for what a reader should never see; see the module's docstring."""
    axes = [ax for ax in fig.axes if ax.get_visible()]
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    if suptitle and len(axes) > 1 and any(ax.get_title() for ax in axes):
        raise FigureError(f"title {suptitle!r} sits on top of panel titles: keep one of them")
    for text in (t.get_text() for t in fig.findobj(matplotlib.text.Text)):
        if match := _MISSPELT.search(text):
            raise FigureError(f"{text!r} spells {match.group(0)!r}: use {' or '.join(LABELS.values())} (styles.LABELS)")
    figure_legend = bool(fig.legends)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for i, ax in enumerate(axes):
        labelled = [a for a in ax.lines + ax.collections + ax.containers if _labelled(a)]
        legend = ax.get_legend()
        if len(labelled) > 1 and legend is None and not figure_legend:
            raise FigureError(f"panel {i} ({ax.get_title() or 'untitled'}) plots {len(labelled)} labelled things without a legend")
        legends = ([legend] if legend is not None else []) + fig.legends
        if any(_covers_data(ax, lg.get_window_extent(renderer)) for lg in legends):
            raise FigureError(
                f"a legend covers the data of panel {i} ({ax.get_title() or 'untitled'}): move it (loc=...) or outside the panel"
            )


def _labelled(artist) -> bool:
    """Whether an artist has a legend label (matplotlib names unlabelled ones "_child0" and the like)."""
    return bool(artist.get_label()) and not str(artist.get_label()).startswith("_")


def _covers_data(ax, box) -> bool:
    """Whether a legend's box holds a plotted point or overlaps a bar."""
    for line in ax.lines:
        xy = line.get_xydata()
        if len(xy) and _labelled(line):
            points = ax.transData.transform(xy)
            if any(box.contains(x, y) for x, y in points):
                return True
    for collection in ax.collections:
        if len(collection.get_offsets()):
            points = collection.get_offset_transform().transform(collection.get_offsets())
            if any(box.contains(x, y) for x, y in points):
                return True
    for patch in ax.patches:
        extent = patch.get_window_extent()
        if extent.height > 1 and box.overlaps(extent):
            return True
    return False


def save(fig, profile: str, name: str) -> list[Path]:
    """Check `fig`, stamp it below everything else, and save it as figures/<profile>/<name>.png and .svg."""
    check(fig)
    out = figures_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    # below the figure's own area: `bbox_inches="tight"` grows the canvas to hold it, clear of the axis labels
    fig.text(0.99, -0.05, stamp(profile), ha="right", va="top", fontsize=7, color="0.45")
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths


# The book's pipeline, chapter by chapter: (chapter, title, what it does). Chapter 00 sits apart:
# it builds the decoder that chapter 04 runs.
PIPELINE = [
    ("00", "theory", "the speculative decoder,\nwritten out and tested"),
    ("01", "datasets", "problems; a teacher writes\nCoT and CoD answers"),
    ("02", "training", "the target LoRA-tuned\non CoT, and on CoD"),
    ("03", "distillation", "each tuned target writes;\na small draft learns it"),
    ("04", "benchmarking", "each target alone, then\nwith its draft: speculation"),
    ("05", "analysis", "three questions,\nanswered by paired tests"),
]


def pipeline(chapter: str | None = None):
    """The whole experiment as one diagram, `chapter`'s box ("02") coloured: the "where we are"
    figure each chapter opens with. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10.5, 2.9))
    ax.set(xlim=(0, 10.5), ylim=(0, 2.9))
    ax.axis("off")
    spots = {number: (0.1 + 2.1 * (i - 1), 0.15) for i, (number, _, _) in enumerate(PIPELINE) if number != "00"}
    spots["00"] = (spots["04"][0], 1.75)
    for number, title, what in PIPELINE:
        x, y = spots[number]
        here = number == chapter
        ax.add_patch(
            FancyBboxPatch(
                (x, y),
                1.9,
                0.95,
                boxstyle="round,pad=0.02",
                facecolor=PALETTE[0] if here else "0.94",
                edgecolor="0.35",
                lw=1.4 if here else 0.8,
            )
        )
        color = "white" if here else "0.15"
        ax.text(x + 0.95, y + 0.7, f"{number} {title}", ha="center", va="center", fontsize=9.5, weight="bold", color=color)
        ax.text(x + 0.95, y + 0.32, what, ha="center", va="center", fontsize=8, color=color)
    arrow = {"arrowstyle": "-|>", "color": "0.35", "lw": 1.2}
    for a, b in zip(["01", "02", "03", "04"], ["02", "03", "04", "05"], strict=True):
        ax.annotate("", xy=(spots[b][0], 0.62), xytext=(spots[a][0] + 1.9, 0.62), arrowprops=arrow)
    ax.annotate("", xy=(spots["04"][0] + 0.95, 1.1), xytext=(spots["00"][0] + 0.95, 1.75), arrowprops=arrow)
    ax.text(spots["04"][0] + 1.02, 1.42, "its decoder", fontsize=8, color="0.35", va="center")
    return fig


def pipeline_alt_text(chapter: str | None = None) -> str:
    """What the pipeline figure shows, in words (the image's alt text)."""
    steps = " → ".join(f"{n} {t} ({w.replace(chr(10), ' ')})" for n, t, w in PIPELINE if n != "00")
    n, t, w = PIPELINE[0]
    here = f" This chapter: {chapter} {dict((p[0], p[1]) for p in PIPELINE)[chapter]}." if chapter else ""
    return f"The book's pipeline: {steps}; {n} {t} ({w.replace(chr(10), ' ')}) gives chapter 04 its decoder.{here}"


def pipeline_svg(chapter: str | None = None) -> str:
    """The pipeline figure as SVG text (one copy for the chapters, the site's index and the README)."""
    import io

    import matplotlib.pyplot as plt

    fig = pipeline(chapter)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buffer.getvalue()


def where_we_are(chapter: str):
    """The pipeline figure for a notebook, inline as SVG with its alt text (renders offline, in
    JupyterLab and in the site)."""
    import base64

    from IPython.display import HTML

    data = base64.b64encode(pipeline_svg(chapter).encode()).decode()
    alt = pipeline_alt_text(chapter).replace('"', "&quot;")
    return HTML(f'<img src="data:image/svg+xml;base64,{data}" alt="{alt}" style="max-width:100%">')


# Leviathan et al.'s Fig. 1: accepted draft tokens green, the rejected proposal red (struck out),
# the target's own token blue (its correction after a rejection, else the bonus).
TOKEN_COLORS = {"accepted": "#c8e6c9", "rejected": "#ffcdd2", "target": "#bbdefb"}


def _token_span(text: str, kind: str, color: str | None = None) -> str:
    import html

    shown = html.escape(text).replace("\n", "⏎").replace(" ", "&nbsp;") or "∅"
    strike = "text-decoration:line-through;" if kind == "rejected" else ""
    background = color or TOKEN_COLORS[kind]
    return f'<span title="{kind}" style="background:{background};{strike}padding:1px 1px;border-radius:2px">{shown}</span>'


def _legend_html() -> str:
    names = {"accepted": "draft token, accepted", "rejected": "draft token, rejected", "target": "target's token (correction or bonus)"}
    return " ".join(_token_span(names[k], k) for k in TOKEN_COLORS)


def steps_html(steps, decode, limit: int | None = None):
    """A recorded run's verifications, one line each (`specdec.steps`), tokens coloured as in
    Leviathan et al.'s Fig. 1; `decode(token_id)` gives a token's text. Returns IPython HTML."""
    from IPython.display import HTML

    if not steps:
        return HTML("<p>The engine recorded no steps for this run (vLLM reports counts, not steps).</p>")
    lines = []
    for i, step in enumerate(steps[:limit], start=1):
        spans = [_token_span(decode(t), "accepted") for t in step.accepted]
        if step.rejected is not None:
            spans.append(_token_span(decode(step.rejected), "rejected"))
        if step.target is not None:
            spans.append(_token_span(decode(step.target), "target"))
        lines.append(f'<div><span style="color:#777;display:inline-block;width:4.5em">step {i}</span>{"".join(spans)}</div>')
    return HTML(f'<div style="font-family:monospace;line-height:1.9">{_legend_html()}{"".join(lines)}</div>')


def answer_html(steps, decode):
    """One whole answer, each token coloured by who wrote it: green where the draft's token was
    accepted, blue where the target wrote its own. Returns IPython HTML."""
    from IPython.display import HTML

    spans = []
    for step in steps:
        spans += [_token_span(decode(t), "accepted") for t in step.accepted]
        if step.target is not None:
            spans.append(_token_span(decode(step.target), "target"))
    return HTML(f'<div style="font-family:monospace;line-height:1.9">{"".join(spans)}</div>')


def loss_mask_html(tokens: list[str], mask: list[int]):
    """One training row, token by token: the prompt's tokens grey (label -100, no loss), the
    tokens the model learns to write highlighted. Returns IPython HTML."""
    from IPython.display import HTML

    kinds = {0: ("prompt: no loss", "#eeeeee"), 1: ("trained: in the loss", "#fff3b0")}
    legend = " ".join(_token_span(name, name, color) for name, color in kinds.values())
    spans = "".join(_token_span(t, *kinds[m]) for t, m in zip(tokens, mask, strict=True))
    return HTML(f'<div style="font-family:monospace;line-height:1.9">{legend}<br>{spans}</div>')
