"""Leverage statistics against simulations with known answers, and worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datalever.analysis.ask import AdaptiveSearch, decide
from datalever.analysis.question import parse_delta
from datalever.analysis.statistics import (
    BOOTSTRAP_MIN_SAMPLES,
    bootstrap_ci,
    crossing,
    gap_note,
    gap_share,
    leverage_power,
    mean_ci,
    paired_test,
    set_back_to,
    targeted_effect,
)
from datalever.analysis.summary import summarise
from datalever.errors import DataleverError

REPS = 400


def test_bootstrap_interval_covers_the_true_mean_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    hits = 0
    for rep in range(REPS):
        sample = rng.normal(-0.02, 0.01, size=30)
        hits += bootstrap_ci(sample, 0.95, seed=rep).contains(-0.02)
    assert 0.92 <= hits / REPS <= 0.98


def test_percentile_bootstrap_and_degenerate_inputs():
    ci = bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0]), method="percentile")
    assert 1.0 <= ci.low < 2.5 < ci.high <= 4.0
    assert bootstrap_ci(np.array([0.3, 0.3, 0.3])).low == 0.3
    assert np.isnan(bootstrap_ci(np.array([1.0])).low)


def test_paired_test_has_the_nominal_false_positive_rate():
    rng = np.random.default_rng(11)
    p = np.array([paired_test(rng.normal(0, 1, size=10)) for _ in range(2000)])
    assert 0.035 <= (p < 0.05).mean() <= 0.065
    assert paired_test(rng.normal(1, 0.2, size=10)) < 1e-6


def test_normalised_views_by_hand():
    # baseline 0.80, item mean 0.76: a change of -0.01 erases 0.01 / 0.04 = 25 % of the gap.
    assert gap_share(-0.01, 0.80, 0.76) == pytest.approx(0.25)
    # RMSE (lower is better): 0.93 vs 1.02; +0.03 erases 0.03 / 0.09 of the gap.
    assert gap_share(0.03, 0.93, 1.02) == pytest.approx(1 / 3)
    # Data leverage power: 0.7 between worst 0.5 and best 0.9 is (0.7-0.5)/(0.9-0.5) = 0.5.
    assert leverage_power(0.7, 0.5, 0.9) == pytest.approx(0.5)


def test_crossing_and_set_back_to():
    sizes = np.array([0.0, 0.2, 0.4, 0.6])
    mean = np.array([0.80, 0.79, 0.77, 0.74])
    # 0.775 lies 0.015 / 0.02 = 3/4 of the way from 0.79 (at 0.2) to 0.77 (at 0.4): 0.35.
    assert crossing(sizes, mean, 0.775) == pytest.approx(0.35)
    assert np.isnan(crossing(sizes, mean, 0.5))
    low, high = mean - 0.01, mean + 0.01
    point, interval = set_back_to(sizes, mean, low, high, 0.775)
    # the lower band (0.78 at 0.2, 0.76 at 0.4) crosses at 0.25; the upper (0.78 at 0.4,
    # 0.75 at 0.6) at 0.4 + 0.2 * 0.005 / 0.03.
    assert point == pytest.approx(0.35)
    assert interval.low == pytest.approx(0.25)
    assert interval.high == pytest.approx(0.4 + 0.2 / 6)


def test_targeted_effect():
    effect = targeted_effect(np.array([-0.04, -0.06, -0.05]), np.array([-0.01, -0.01, -0.01]))
    assert effect.ratio == pytest.approx(5.0)
    assert effect.p_value < 0.05


def test_parse_delta():
    assert parse_delta("-2%").kind == "relative" and parse_delta("-2%").amount == -0.02
    assert parse_delta("-0.01").kind == "absolute" and parse_delta("-0.01").threshold == 0.01
    gap = parse_delta("gap:50%")
    assert gap.kind == "gap" and gap.threshold == 0.5
    # gap share of a change -0.02 when baseline 0.8 and reference 0.76 is 0.5
    assert gap.scores(np.array([-0.02]), np.array([0.8]), np.array([0.76]))[0] == pytest.approx(0.5)
    rel = parse_delta("-2%")
    assert rel.scores(np.array([-0.016]), np.array([0.8]), np.array([0.7]))[0] == pytest.approx(
        0.02
    )
    for bad in ("two percent", "0%", "gap:-5%", ""):
        with pytest.raises(DataleverError):
            parse_delta(bad)


def test_decide():
    low, high, decision = decide(np.array([0.05, 0.06, 0.055, 0.052, 0.058]), 0.02, 0.01)
    assert decision == "reaches" and low > 0.02
    assert decide(np.array([0.0, 0.001, -0.001, 0.0005, 0.0]), 0.02, 0.01)[2] == "short"
    assert decide(np.array([0.0, 0.04, 0.01, 0.03, 0.02]), 0.02, 0.01)[2] == "undecided"


def true_score(size: float) -> float:
    """A known leverage curve: the share lost grows as 0.1 × size (threshold 0.03 at 0.3)."""
    return 0.1 * size


def simulated_learner(rep: int, noise: float = 0.006):
    """Scores of a synthetic learner: the known curve plus noise; sample i of a size is fixed
    across looks, as stored results are."""

    def evaluate(size: float, n: int) -> np.ndarray:
        key = int(round(size * 1e6))
        rng = np.random.default_rng([rep, key])
        return true_score(size) + rng.normal(0, noise, size=n)

    return evaluate


def test_ask_finds_the_known_threshold_at_least_as_often_as_intervals_cover():
    threshold, truth = 0.03, 0.3
    found = covered = 0
    rng = np.random.default_rng(5)
    for rep in range(REPS):
        result = AdaptiveSearch(simulated_learner(rep), threshold, 0.95, tolerance=0.02).run()
        assert result.answer == "yes"
        found += result.low <= truth <= result.high
        # The bootstrap interval of the change at the true threshold covers the true value.
        at_truth = simulated_learner(10_000 + rep)(truth, 30)
        covered += bootstrap_ci(at_truth, 0.95, seed=int(rng.integers(1 << 30))).contains(threshold)
    coverage = covered / REPS
    assert 0.92 <= coverage <= 0.98
    assert found / REPS >= max(coverage, 0.95)


def test_ask_says_no_and_undecided():
    never = AdaptiveSearch(lambda s, n: np.full(n, 0.001) + 0.0001 * np.arange(n), 0.05).run()
    assert never.answer == "no"
    noisy = AdaptiveSearch(
        lambda s, n: np.random.default_rng(int(s * 1e6)).normal(0.05, 1.0, size=n),
        0.05,
        looks=(5,),
    ).run()
    assert noisy.answer == "undecided"


def test_ask_never_examines_the_same_number_of_users_twice():
    # Sizes near 70 % sit exactly at the threshold, so the coarse size 0.7 stays undecided;
    # bisection between 0.5 and 0.9 lands on 660/943 users, the same collective size as 0.7,
    # and must stop there rather than draw those users anew.
    looked: list[float] = []

    def evaluate(size: float, n: int) -> np.ndarray:
        looked.append(size)
        rng = np.random.default_rng(int(size * 1e6))
        if 0.6 < size < 0.8:  # mean exactly at the threshold, spread: undecided at any n
            return 0.03 + 0.05 * np.resize([1.0, -1.0, 1.0, -1.0, 0.0], n)
        return (0.0 if size < 0.6 else 0.1) + rng.normal(0, 0.001, size=n)

    result = AdaptiveSearch(evaluate, 0.03, resolution=1 / 943).run()
    assert result.verdicts[[v.size for v in result.verdicts].index(0.7)].decision == "undecided"
    assert {round(s * 943) for s in looked} == {round(s * 943) for s in set(looked)}
    assert len({round(s * 943) for s in looked}) == len(set(looked))
    assert result.answer == "yes" and (result.low, result.high) == (0.5, 0.9)


def test_set_back_to_leaves_the_interval_open_when_a_band_never_reaches():
    sizes = np.array([0.0, 0.5, 1.0])
    mean = np.array([0.80, 0.78, 0.76])
    # the lower band reaches 0.77 at 0.5; the upper band (mean + 0.02) never does.
    point, interval = set_back_to(sizes, mean, mean - 0.01, mean + 0.02, 0.77)
    assert point == pytest.approx(0.75)
    assert interval.low == pytest.approx(0.5) and interval.high == np.inf
    assert interval.contains(point)


def test_expansion_restores_coverage_for_small_samples(monkeypatch):
    from datalever.analysis import statistics

    rng = np.random.default_rng(3)
    samples = [rng.normal(0.0, 1.0, size=10) for _ in range(REPS)]
    expanded = np.mean([bootstrap_ci(s, 0.95, seed=i).contains(0.0) for i, s in enumerate(samples)])
    monkeypatch.setattr(statistics, "expanded_level", lambda confidence, n: confidence)
    plain = np.mean([bootstrap_ci(s, 0.95, seed=i).contains(0.0) for i, s in enumerate(samples)])
    # Unexpanded, ten samples cover about 89 %; expanded, about 93 % (1,000-sample runs of
    # benchmarks/interval_coverage.py).
    assert expanded >= 0.91
    assert expanded - plain >= 0.02


@pytest.mark.parametrize("n", [3, 5, 10, 30])
def test_the_reported_interval_covers_the_true_mean_down_to_three_samples(n):
    # The bootstrap of three values is their min-max (about 75 % coverage); the interval the
    # summary reports must hold 95 % at every sample count (within Monte Carlo error).
    reps = 1000 if n < BOOTSTRAP_MIN_SAMPLES else 400
    rng = np.random.default_rng([13, n])
    hits = 0
    for rep in range(reps):
        interval, _ = mean_ci(rng.normal(-0.02, 0.01, size=n), 0.95, seed=rep)
        hits += interval.contains(-0.02)
    assert 0.92 <= hits / reps <= 0.98


def test_the_reported_interval_names_its_method():
    values = np.array([0.1, 0.3, 0.2])
    interval, method = mean_ci(values)
    assert method == "t"
    # mean 0.2, sd 0.1: 0.2 ± t(0.975, 2) · 0.1 / √3 = 0.2 ± 0.2484
    assert interval.low == pytest.approx(0.2 - 0.24841, abs=1e-5)
    assert interval.high == pytest.approx(0.2 + 0.24841, abs=1e-5)
    many = np.random.default_rng(0).normal(size=BOOTSTRAP_MIN_SAMPLES)
    assert mean_ci(many)[1] == "BCa"
    assert mean_ci(many, method="percentile")[1] == "percentile"
    assert mean_ci(np.array([1.0]))[1] is None


def test_gap_note_says_when_a_share_of_the_gap_is_meaningless():
    assert gap_note(0.80, 0.76) is None
    assert gap_note(0.93, 1.02, higher_is_better=False) is None  # RMSE: lower is better
    assert "below" in gap_note(0.74, 0.76)
    assert "below" in gap_note(1.05, 1.02, higher_is_better=False)
    assert "under 1 %" in gap_note(0.7620, 0.7619)
    assert "no gap" in gap_note(0.76, 0.76)
    assert "no reference" in gap_note(0.76, np.nan)


def synthetic_results(n_samples: int, knn_baseline: float = 0.75) -> pd.DataFrame:
    """Stored results of two learners (reference item_mean at 0.76) under strikes of 50 %,
    two folds each; ``item_knn`` starts at ``knn_baseline``."""
    rng = np.random.default_rng(1)
    rows = []
    for learner, base in (("biased_mf", 0.80), ("item_knn", knn_baseline)):
        for sample in range(n_samples):
            for fold in range(2):
                common = dict(
                    learner=learner,
                    lever="strike",
                    collective_kind="random",
                    collective="random 0.5",
                    size=0.5,
                    count=np.nan,
                    grp=None,
                    eval_group="everyone",
                    metric="ndcg@10",
                    sample=sample,
                    fold=fold,
                    baseline=base,
                    reference=0.76,
                    n_participants=470,
                )
                rows.append({**common, "value": base - 0.02 + rng.normal(0, 0.003)})
    return pd.DataFrame(rows)


def test_summary_records_the_interval_method_and_refuses_absurd_gap_shares():
    few = summarise(synthetic_results(3)).set_index("learner")
    assert set(few["ci_method"]) == {"t"}
    # item_knn starts below the reference: no share of a negative gap, and the reason
    assert np.isnan(few.loc["item_knn", "gap_share"])
    assert "below" in few.loc["item_knn", "gap_note"]
    assert few.loc["biased_mf", "gap_share"] == pytest.approx(0.5, abs=0.05)
    assert pd.isna(few.loc["biased_mf", "gap_note"])
    many = summarise(synthetic_results(BOOTSTRAP_MIN_SAMPLES))
    assert set(many["ci_method"]) == {"BCa"}


def test_a_level_target_is_reached_from_the_side_it_lies_on():
    from datalever.analysis.question import parse_delta

    up = parse_delta("=0.9")
    assert (up.kind, up.amount, up.threshold) == ("level", 0.9, 0.0)
    # baseline 0.1, changes +0.85 and +0.7: values 0.95 (past 0.9) and 0.8 (short)
    np.testing.assert_allclose(
        up.scores(np.array([0.85, 0.7]), np.array([0.1, 0.1]), np.zeros(2)), [0.05, -0.1]
    )
    down = parse_delta("=0.5")  # from a baseline of 0.77: reaching means falling to 0.5
    np.testing.assert_allclose(
        down.scores(np.array([-0.3, -0.1]), np.array([0.77, 0.77]), np.zeros(2)), [0.03, -0.17]
    )
    assert parse_delta("=0").amount == 0.0 and up.describe("dlp") == "brings dlp to 0.9"
