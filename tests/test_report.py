import pytest

from specbook import report


def test_the_results_section_is_replaced_between_its_markers_and_only_there():
    readme = f"# t\n\n## Results\n\n{report.START}\nold table\n{report.END}\n\n## Next\n"
    once = report.splice(readme, "| a |\n|---|\n| 1 |\n")
    assert once == f"# t\n\n## Results\n\n{report.START}\n| a |\n|---|\n| 1 |\n{report.END}\n\n## Next\n"
    assert report.splice(once, "| a |\n|---|\n| 1 |\n") == once  # the same results: the same README
    with pytest.raises(ValueError, match="needs one"):
        report.splice("# no markers\n", "x")
