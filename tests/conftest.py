import pytest
import torch

from specbook import models
from specbook.profiles import ModelShape


@pytest.fixture
def output_root(tmp_path, monkeypatch):
    """Artifacts of the code under test go to a temporary folder, never the checkout's data/."""
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    return tmp_path


def tiny_shape(layers: int = 1) -> ModelShape:
    return ModelShape(layers=layers, hidden=32, mlp=64, heads=2, kv_heads=1, head_dim=16)


@pytest.fixture(scope="session")
def tiny_model():
    """Makes the tests' models: a small random Qwen3 in float64 (outputs cannot flip on rounding)
    with a sharpened head (decisive argmaxes, next-token distributions far from flat)."""

    def make(vocab: int, seed: int, layers: int = 1, logit_scale: float = 40.0, eos_token_id: int | None = None, device="cpu"):
        model = models.untrained(tiny_shape(layers), vocab, seed, logit_scale).double().to(device)
        model.config.eos_token_id = model.generation_config.eos_token_id = eos_token_id
        return model

    return make


@pytest.fixture(scope="module", params=["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
def device(request):
    """Where the decoder's tests run: the CPU, and the GPU wherever one is at hand, so that
    `pytest tests/test_specdec.py` on a GPU machine tests the decoder there too."""
    return torch.device(request.param)
