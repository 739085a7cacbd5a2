"""The per-layer distance functions on their own."""
import nnabla as nn
import nnabla.functions as F
import numpy as np

from metrics.lpips import distances


def test_unit_normalize_matches_the_reference_formula():
    f = np.random.default_rng(0).standard_normal((2, 5, 3, 4)).astype(np.float32)
    out = distances.unit_normalize(nn.Variable.from_numpy_array(f))
    out.forward()
    expected = f / (np.sqrt((f ** 2).sum(axis=1, keepdims=True)) + 1e-10)
    np.testing.assert_allclose(out.d, expected, rtol=1e-6)


def test_unit_normalize_gradient_finite_at_an_all_zero_vector():
    f = np.random.default_rng(1).standard_normal((1, 4, 2, 2)).astype(np.float32)
    f[0, :, 0, 0] = 0  # one feature vector exactly zero: sqrt's gradient is infinite there
    x = nn.Variable.from_numpy_array(f, need_grad=True)
    y = F.sum(distances.unit_normalize(x) * np.float32(0.5))
    y.forward()
    x.grad.zero()
    y.backward()
    assert np.all(np.isfinite(x.g))


def test_baseline_distance_sums_channels():
    rng = np.random.default_rng(2)
    a, b = (rng.random((1, 3, 2, 2)).astype(np.float32) for _ in range(2))
    out = distances.channel_sum_distance(nn.Variable.from_numpy_array(a), nn.Variable.from_numpy_array(b))
    out.forward()
    na = a / (np.sqrt((a ** 2).sum(1, keepdims=True)) + 1e-10)
    nb = b / (np.sqrt((b ** 2).sum(1, keepdims=True)) + 1e-10)
    np.testing.assert_allclose(out.d, ((na - nb) ** 2).sum(1, keepdims=True), rtol=1e-5)
