"""The ablation's recorded command and configurations, without training."""
import pytest

from medgan_lib.ablation import set_text, variant_config
from medgan_lib.config_cli import parse_set


@pytest.mark.parametrize("field, value", [("data", "npz:/data/cxr.npz#train"), ("n_images", None),
                                          ("d_minibatch_std", False), ("r1_gamma", 0.1), ("notes", ("a", "b, c"))])
def test_the_recorded_set_text_parses_back_to_the_same_value(field, value):
    assert parse_set(f"{field}={set_text(value)}") == (field, value)


def test_a_variant_is_the_base_with_its_change_then_the_common_changes():
    config = variant_config("no R1 penalty", "medgan", 3, 40, {"data": "npz:/data/cxr.npz#train", "n_images": None})
    assert (config.r1_gamma, config.seed, config.epochs, config.data, config.n_images) == (0.0, 3, 40, "npz:/data/cxr.npz#train", None)
