"""The Trunk records: each one is the single description of its network."""
import nnabla as nn
import pytest

from metrics.lpips.engines.tuning import TUNING
from metrics.lpips.trunks import TRUNKS, check_size, get_trunk


@pytest.mark.parametrize("name", list(TRUNKS))
def test_record_describes_its_graph(name):
    trunk = TRUNKS[name]
    assert trunk.name == name and len(trunk.taps) == len(trunk.channels) == len(set(trunk.taps))
    for side in (trunk.min_size, TUNING[name].export_size):
        with nn.parameter_scope("record_" + name, {}), nn.auto_forward(False):
            taps = trunk.build(nn.Variable((1, 3, side, side)))
        assert [t.shape[1] for t in taps] == list(trunk.channels)
        assert all(t.shape[2] >= 1 and t.shape[3] >= 1 for t in taps)


def test_every_trunk_has_its_engine_tuning():
    assert set(TUNING) == set(TRUNKS)
    for tuning in TUNING.values():
        assert {kind for kind, _ in tuning.bytes_per_pixel} == {"winograd", "direct", "nnabla"}


def test_unknown_trunks_and_small_images_are_named_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet'; expected one of alex, vgg, squeeze"):
        get_trunk("resnet")
    with pytest.raises(ValueError, match="30x40 pixels; the 'alex' trunk needs at least 31x31"):
        check_size("alex", 40, 30, "x")
