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

from specbook import book, runlock
from specbook.paths import NOTEBOOKS, artifacts
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
html_static_path = ["_static"]
html_css_files = ["specbook.css"]  # code wraps inside the page's column instead of scrolling sideways
"""

CSS = """\
div.cell div.highlight pre, div.output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
"""
PAGES = NOTEBOOKS / "pages"  # pages that are not chapters: the glossary, the notes on how the book got its shape


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
    pages = []
    for page in sorted(PAGES.glob("*.md")):
        shutil.copy(page, directory / page.name)
        pages.append(page.stem)
    (directory / "_static").mkdir(exist_ok=True)
    (directory / "_static" / "specbook.css").write_text(CSS)
    (directory / "index.md").write_text(index_page(profile, directory, names, pages))
    (directory / "conf.py").write_text(CONF.format(profile=profile))
    return names


def index_page(profile: str, directory: Path, chapters: list[str], pages: list[str]) -> str:
    """The page a reader lands on: what the book is, the pipeline figure, the answers of this
    profile's run (chapter 05's results, when it ran), where to start, and the table of contents."""
    from specbook import figures

    (directory / "pipeline.svg").write_text(figures.pipeline_svg())
    results = artifacts(profile).analysis / "results.md"
    answers = results.read_text() if results.exists() else "Chapter 05 has not run on this profile yet: its answers appear here then."
    toc = "\n".join(chapters)
    extra = "\n".join(pages)
    return (
        f"# specbook · the {profile} profile\n\n"
        "A book that fine-tunes a target model on Chain of Thought and on Chain of Draft answers, distils a small draft "
        "model from each tuned target, and measures what speculative decoding with that draft buys: accuracy, tokens, "
        "draft acceptance and speed, on three difficulty levels.\n\n"
        f"```{{image}} pipeline.svg\n:alt: {figures.pipeline_alt_text()}\n```\n\n"
        f"## The answers, on this run\n\n{answers}\n\n"
        "## Where to start\n\n"
        "New to speculative decoding? Start with chapter 00: it writes the decoder out, proves it changes nothing the "
        "target writes, and derives what it can gain. Here for the results? Chapter 05 gives the answers first, then "
        "their caveats and tests. Terms are defined where they first appear, and collected in the glossary.\n\n"
        f"Built from {stamp(profile)}.\n\n```{{toctree}}\n:maxdepth: 1\n:caption: Chapters\n\n{toc}\n```\n\n"
        f"```{{toctree}}\n:maxdepth: 1\n:caption: More\n\n{extra}\n```\n"
    )


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
    try:
        with runlock.running(args.profile):  # the executed chapters must not change while the site is built from them
            index = build(args.profile)
    except runlock.ProfileBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"the book on {args.profile} as a website: {index} (open it in a browser; it loads nothing from the network)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
