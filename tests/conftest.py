import pytest


@pytest.fixture
def output_root(tmp_path, monkeypatch):
    """Artifacts of the code under test go to a temporary folder, never the checkout's data/."""
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    return tmp_path
