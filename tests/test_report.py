import pytest

from specbook import report


def test_the_results_section_is_replaced_between_its_markers_and_only_there():
    readme = f"# t\n\n## Results\n\n{report.START}\nold table\n{report.END}\n\n## Next\n"
    once = report.splice(readme, "| a |\n|---|\n| 1 |\n")
    assert once == f"# t\n\n## Results\n\n{report.START}\n| a |\n|---|\n| 1 |\n{report.END}\n\n## Next\n"
    assert report.splice(once, "| a |\n|---|\n| 1 |\n") == once  # the same results: the same README
    with pytest.raises(ValueError, match="needs one"):
        report.splice("# no markers\n", "x")


def test_the_run_time_is_read_from_every_chapters_record(output_root):
    import json

    from specbook import book
    from specbook.paths import artifacts

    notebooks = artifacts("smoke").notebooks
    notebooks.mkdir(parents=True)
    machine = {"cpu": "AMD EPYC", "cores": 2, "torch": "2.13.0"}
    for i, chapter in enumerate(book.chapters()):
        assert book.run_time("smoke") is None  # not every chapter has run
        record = {"seconds": 60.0 * (i + 1), "commit": "abc123", "machine": machine}
        (notebooks / f"{chapter.stem}.run.json").write_text(json.dumps(record))
    said = book.run_time("smoke")
    assert said.startswith("The book's last run on `smoke` took 21.0 minutes (chapter by chapter: 00 1.0, 01 2.0, 02 3.0")
    assert said.endswith("on AMD EPYC, 2 cores, torch 2.13.0, at commit abc123.")
