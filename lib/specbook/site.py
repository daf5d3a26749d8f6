"""`make book`: the executed chapters of one profile as a static website, readable with no network.

Sphinx with myst-nb (the engine under Jupyter Book 1) renders the executed notebooks from
data/<profile>/notebooks/ as they are (`nb_execution_mode = "off"`: nothing is run again) with
sphinx-book-theme, into data/<profile>/site/. MathJax is served from a local copy
(sphinx-mathjax-offline), so formulas render offline; the cell papermill injects with the
profile's name is left out of the pages.

    python -m specbook.site --profile tiny
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from specbook import book
from specbook.paths import artifacts
from specbook.runinfo import stamp

CONF = """\
project = "specbook · {profile}"
author = "specbook"
extensions = ["myst_nb", "sphinx-mathjax-offline"]
html_theme = "sphinx_book_theme"
html_title = "specbook: Chain of Draft vs Chain of Thought, sped up with speculative decoding"
html_theme_options = {{"show_toc_level": 2}}
nb_execution_mode = "off"  # the chapters ran already (make run-all); the site shows what they printed
myst_enable_extensions = ["dollarmath", "amsmath"]
exclude_patterns = ["_build"]
"""


def sources(profile: str, directory: Path) -> list[str]:
    """Copy the profile's executed chapters into `directory` with the injected-parameters cell
    tagged for removal, and write the index page; returns the chapters' names."""
    import nbformat

    executed = artifacts(profile).notebooks
    names = []
    for chapter in book.chapters():
        path = executed / chapter.name
        if not path.exists():
            continue
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            tags = cell.metadata.get("tags", [])
            if "injected-parameters" in tags:
                cell.metadata["tags"] = [*tags, "remove-cell"]  # papermill's copy of the profile's name: noise on a page
        nbformat.write(notebook, directory / chapter.name)
        names.append(chapter.stem)
    if not names:
        raise FileNotFoundError(f"no executed chapter in {executed}: run the book first (make run-all PROFILE={profile})")
    toc = "\n".join(names)
    index = (
        f"# specbook · the {profile} profile\n\n"
        "Chain of Draft vs Chain of Thought fine-tuning, sped up with speculative decoding: every chapter of the book "
        f"as it ran on the `{profile}` profile, with its tables and figures.\n\n"
        f"Built from {stamp(profile)}.\n\n```{{toctree}}\n:maxdepth: 1\n\n{toc}\n```\n"
    )
    (directory / "index.md").write_text(index)
    (directory / "conf.py").write_text(CONF.format(profile=profile))
    return names


def build(profile: str) -> Path:
    """Build the site into data/<profile>/site/ (made anew each time); returns its index page."""
    out = artifacts(profile).site
    source = out.parent / "site_source"
    for folder in (out, source):
        shutil.rmtree(folder, ignore_errors=True)
    source.mkdir(parents=True)
    sources(profile, source)
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", str(source), str(out)], check=True)
    shutil.rmtree(source)
    return out / "index.html"


EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.IGNORECASE)


def external_loads(page: str) -> list[str]:
    """The tags of an HTML page that load something from another host (a script, style sheet, font or image)."""
    return [m.group(0) for m in EXTERNAL.finditer(page)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny")
    args = parser.parse_args(argv)
    index = build(args.profile)
    print(f"the book on {args.profile} as a website: {index} (open it in a browser; it loads nothing from the network)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
