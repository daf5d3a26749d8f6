import pytest
from transformers import Qwen3ForCausalLM

from specbook import models, roofline
from specbook.profiles import ModelShape


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_count_equals_transformers(tied):
    shape = ModelShape(layers=3, hidden=64, mlp=192, heads=2, kv_heads=1, head_dim=32)
    model = Qwen3ForCausalLM(models.qwen3_config(shape, 256, tie_word_embeddings=tied))
    assert roofline.parameters(roofline.Architecture("t", shape, 256, tied)) == sum(p.numel() for p in model.parameters())


def test_qwen3_sizes_match_their_model_cards():
    assert roofline.parameters(roofline.QWEN3_14B) / 1e9 == pytest.approx(14.8, abs=0.05)
    assert roofline.parameters(roofline.QWEN3_0_6B) / 1e9 == pytest.approx(0.6, abs=0.01)


def test_decoding_is_memory_bound_and_verifying_is_nearly_free():
    a, hw = roofline.QWEN3_14B, roofline.H100_SXM
    one, eight = roofline.forward_cost(a, 1, 512), roofline.forward_cost(a, 8, 512)
    assert one["intensity"] == pytest.approx(1.0, abs=0.05)  # ~2 FLOPs per 2-byte weight
    assert eight["flops"] == pytest.approx(8 * one["flops"], rel=0.01)
    assert eight["bytes"] - one["bytes"] == 40 * 2 * 8 * 128 * 7 * 2  # only the 7 extra tokens' K and V
    assert roofline.forward_time(a, hw, 1, 512) == one["bytes"] / hw.bandwidth
    assert roofline.forward_time(a, hw, 8, 512) / roofline.forward_time(a, hw, 1, 512) < 1.001
    assert roofline.ridge_point(hw) == pytest.approx(295.2, abs=0.1)
    # far past the ridge point the pass becomes compute-bound
    assert roofline.forward_time(a, hw, 4096, 512) == roofline.forward_cost(a, 4096, 512)["flops"] / hw.flops
