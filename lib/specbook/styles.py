"""The two rationale styles, named once: the ids used in files and paths, the labels every table
and figure shows, and their colours."""

STYLES = ("cot", "cod")
LABELS = {"cot": "CoT", "cod": "CoD"}
COLORS = {"cot": "#4C72B0", "cod": "#DD8452"}  # the first two of seaborn's "deep" palette
