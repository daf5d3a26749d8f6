import shutil

import pytest

from specbook import profiles
from specbook.paths import PARAMS


@pytest.mark.parametrize("name", ["smoke", "tiny", "full"])
def test_every_profile_loads(name):
    profile = profiles.load(name)
    assert profile.name == name
    assert set(profiles._levels_of(profile.problems)) == set(profiles.LEVELS)


def test_full_profile_is_the_reference_scale():
    full = profiles.load("full")
    assert full.tokenizer.name == "Qwen/Qwen3-14B"
    assert full.teacher.kind == "gemini"
    assert full.problems.source == "hub" and full.problems.train_per_level == 1000
    assert full.problems.hub["easy"].path == "openai/gsm8k"


def test_unknown_profile_names_the_choices():
    with pytest.raises(profiles.ProfileError, match=r"unknown profile 'huge': choose one of full, smoke, tiny"):
        profiles.load("huge")


@pytest.fixture
def params(tmp_path):
    shutil.copy(PARAMS / "smoke.yaml", tmp_path / "smoke.yaml")
    return tmp_path


def _edit(params, old, new):
    path = params / "smoke.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unknown_key_is_rejected_with_its_path(params):
    _edit(params, "  train_per_level: 24", "  train_per_level: 24\n  trian_per_level: 3")
    with pytest.raises(profiles.ProfileError, match=r"problems: unknown key\(s\) trian_per_level; known keys: source, "):
        profiles.load("smoke", params)


def test_missing_key_is_rejected(params):
    _edit(params, "  test_per_level: 8\n", "")
    with pytest.raises(profiles.ProfileError, match=r"problems: missing key 'test_per_level'"):
        profiles.load("smoke", params)


def test_wrong_type_and_wrong_choice_are_rejected(params):
    _edit(params, "train_per_level: 24", "train_per_level: many")
    with pytest.raises(profiles.ProfileError, match=r"problems.train_per_level: expected int, got 'many'"):
        profiles.load("smoke", params)


def test_unknown_source_is_rejected(params):
    _edit(params, "source: gsm_symbolic", "source: mmlu")
    with pytest.raises(profiles.ProfileError, match=r"problems.source is 'mmlu'; choose one of gsm_symbolic, leg_counting, hub"):
        profiles.load("smoke", params)


def test_chosen_source_needs_its_section(params):
    _edit(params, "source: gsm_symbolic", "source: leg_counting")
    with pytest.raises(profiles.ProfileError, match=r"section problems.leg_counting is missing"):
        profiles.load("smoke", params)
