import numpy as np
import pytest

from dreamlab.running_stats import RunningMeanStd, combine_mean_std


def test_streamed_groups_match_numpy():
    rng = np.random.default_rng(31337)
    stats = RunningMeanStd(shape=(3,))
    everything = []
    for _ in range(20):
        group = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 3), size=(rng.integers(1, 100), 3))
        everything.append(group)
        stats.update(group)
    everything = np.concatenate(everything)
    np.testing.assert_allclose(stats.mean, everything.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, everything.std(0, ddof=1), rtol=1e-10)
    assert stats.count == len(everything)


def test_single_sample_groups_and_scalar_shape():
    values = np.array([1.0, 4.0, -2.0, 7.0])
    stats = RunningMeanStd()
    for v in values:
        stats.update(np.array([v]))
    assert stats.mean == pytest.approx(values.mean())
    assert stats.std == pytest.approx(values.std(ddof=1))


def test_combine_formula_by_hand():
    # Groups {1, 3} and {5}: pooled {1, 3, 5} has mean 3 and sample std 2.
    mean, std, n = combine_mean_std(2.0, np.sqrt(2.0), 2, 5.0, 0.0, 1)
    assert (mean, n) == (3.0, 3) and std == pytest.approx(2.0)


def test_normalize_clips_and_state_round_trip():
    stats = RunningMeanStd(shape=(2,))
    stats.update(np.array([[0.0, 0.0], [2.0, 2.0]]))
    assert np.all(np.abs(stats.normalize(np.array([[1e6, -1e6]]), clip=5.0)) == 5.0)
    other = RunningMeanStd(shape=(2,))
    other.load_state_dict(stats.state_dict())
    np.testing.assert_array_equal(other.mean, stats.mean)
    with pytest.raises(ValueError, match="shape"):
        stats.update(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd(shape=(5,)).load_state_dict(stats.state_dict())


def test_scalar_stats_load_the_shape_one_arrays_older_checkpoints_hold():
    stats = RunningMeanStd()
    stats.load_state_dict({"mean": np.array([2.0]), "std": np.array([0.5]), "count": 7})
    assert stats.mean.shape == () and stats.std == 0.5 and stats.count == 7
    with pytest.raises(ValueError, match="shape"):
        RunningMeanStd().load_state_dict({"mean": np.zeros(2), "std": np.zeros(2), "count": 1})
