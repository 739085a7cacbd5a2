"""The 2AFC and JND protocols: the reference's formulas on small cases worked by hand."""
import numpy as np
import pytest

from metrics.lpips.evaluation.protocols import (jnd_map, judgment_correlations, two_afc_score,
                                                voc_ap)


def test_2afc_agreement_per_triplet_and_ties_count_half():
    d0, d1 = [1.0, 2.0, 3.0, 3.0, 0.5], [2.0, 1.0, 3.0, 4.0, 0.7]
    judge = [0.0, 0.4, 1.0, 1.0, 0.2]
    score, agreement = two_afc_score(d0, d1, judge)
    # p0 closer, nobody chose p1: 1; p1 closer, 40% chose it: 0.4; a tie: 0.5;
    # p0 closer but everybody chose p1: 0; p0 closer, 80% agree: 0.8.
    np.testing.assert_allclose(agreement, [1.0, 0.4, 0.5, 0.0, 0.8], atol=1e-7)
    assert score == pytest.approx(2.7 / 5, abs=1e-7)


def test_2afc_takes_any_shape_and_checks_its_inputs():
    d = np.array([0.1, 0.2, 0.3]).reshape(3, 1, 1, 1)
    assert two_afc_score(d, d[::-1], [0.5, 0.5, 0.5])[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="judge holds 2 values for 3 distances"):
        two_afc_score([1, 2, 3], [3, 2, 1], [0, 1])
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\]; got min 0.0, max 1.5"):
        two_afc_score([1, 2], [2, 1], [0, 1.5])
    with pytest.raises(ValueError, match="d0 holds 2 distances and d1 3"):
        two_afc_score([1, 2], [1, 2, 3], [0, 1])
    with pytest.raises(ValueError, match="d0 is empty"):
        two_afc_score([], [], [])


def test_jnd_average_precision_by_hand():
    # Ranked as given: same = 1, 0, 1, 0. Precision 1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1;
    # the envelope gives 1 over the first half of recall and 2/3 over the second.
    ap, precision, recall = jnd_map([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0])
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 1 / 2])
    np.testing.assert_allclose(recall, [1 / 2, 1 / 2, 1, 1])
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_jnd_sorts_by_distance_and_takes_fractions():
    # Sorted: (d=1, same=1), (d=2, same=0), (d=3, same=1/3): recall 3/4, 3/4, 1 and
    # precision 1, 1/2, (4/3)/3; AP = 3/4 * 1 + 1/4 * 4/9.
    distances = np.array([3.0, 1.0, 2.0]).reshape(3, 1, 1, 1)  # the reference's shape
    ap, _, recall = jnd_map(distances, [1 / 3, 1, 0])
    np.testing.assert_allclose(recall, [3 / 4, 3 / 4, 1], rtol=1e-6)
    assert ap == pytest.approx(3 / 4 + 1 / 4 * 4 / 9, rel=1e-6)


def test_jnd_all_same_and_none_same():
    assert jnd_map([0.3, 0.1, 0.2], [1, 1, 1])[0] == pytest.approx(1.0)
    assert np.isnan(jnd_map([0.3, 0.1, 0.2], [0, 0, 0])[0])  # no positives: undefined, as the reference


def test_voc_ap_uses_the_precision_envelope():
    # A later, higher precision lifts the earlier recall steps.
    assert voc_ap(np.array([0.5, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)
    assert voc_ap(np.array([0.25, 0.5]), np.array([1.0, 0.5])) == pytest.approx(0.25 + 0.25 * 0.5)


def test_judgment_correlations():
    d0 = np.zeros(5)
    d1 = np.array([-2.0, -1.0, 0.0, 1.0, 5.0])
    judge = np.array([0.0, 0.2, 0.5, 0.8, 0.9])
    pearson, spearman = judgment_correlations(d0, d1, judge)
    assert spearman == pytest.approx(1.0)  # the margin ranks the judgments exactly
    assert pearson == pytest.approx(np.corrcoef(d1, judge.astype(np.float32))[0, 1], rel=1e-6)
    assert all(np.isnan(judgment_correlations(d0, d0, judge)))  # a constant margin
