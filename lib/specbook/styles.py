"""The two rationale styles, named once: the ids used in files and paths and the labels every table
and figure shows (their colours: `figures.COLORS`)."""

STYLES = ("cot", "cod")
LABELS = {"cot": "CoT", "cod": "CoD"}
