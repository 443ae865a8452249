"""SPEC §10.3: Holm and Benjamini–Hochberg exactly as statsmodels' multipletests (the oracle)."""
import gc
import math
import random

import pytest
from statsmodels.stats.multitest import multipletests

from webapp.services.experiments.stats import adjust_p_values

ORACLE = {"holm": "holm", "bh": "fdr_bh"}


def oracle(p_values, method):
    present = [p for p in p_values if p is not None]
    adjusted = iter(multipletests(present, method=ORACLE[method])[1].tolist()) if present else iter(())
    return [None if p is None else next(adjusted) for p in p_values]


def test_worked_examples():
    assert adjust_p_values([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert adjust_p_values([0.01, 0.04, 0.03], "bh") == pytest.approx([0.03, 0.04, 0.04])
    assert adjust_p_values([0.5, 0.9], "holm") == [1.0, 1.0]  # capped at 1


def test_none_changes_nothing():
    assert adjust_p_values([0.01, None, 0.2], "none") == [0.01, None, 0.2]


def test_none_stays_none_and_is_not_counted():
    assert adjust_p_values([0.01, None, 0.04], "holm") == pytest.approx([0.02, None, 0.04], nan_ok=False)
    assert adjust_p_values([None, None], "bh") == [None, None]
    assert adjust_p_values([], "holm") == []


def test_a_single_comparison_is_unadjusted():
    assert adjust_p_values([0.03], "holm") == [0.03]
    assert adjust_p_values([0.03], "bh") == [0.03]


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_ties(method):
    values = [0.02, 0.02, 0.02, 0.5]
    assert adjust_p_values(values, method) == oracle(values, method)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_agrees_exactly_with_statsmodels_on_random_families(method, monkeypatch):
    # statsmodels' holm path calls gc.collect() on every call (0.3 s each under pytest); the result is the same
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    rng = random.Random(20261202)
    for _ in range(300):
        size = rng.randint(1, 12)
        family = []
        for _ in range(size):
            roll = rng.random()
            if roll < 0.1:
                family.append(None)
            elif roll < 0.2:
                family.append(rng.choice([0.0, 1.0, 0.05, 0.01]))  # boundaries and ties
            else:
                family.append(rng.random() ** rng.choice([1, 3, 10]))  # many small p-values too
        expected = oracle(family, method)
        actual = adjust_p_values(family, method)
        for got, want in zip(actual, expected):
            assert (got is None) == (want is None)
            if got is not None:
                assert math.isclose(got, want, rel_tol=0, abs_tol=1e-15), (family, actual, expected)
        # a correction never lowers a p-value (Holm never; BH neither: k/m ≤ 1) and keeps the order
        for got, p in zip(actual, family):
            if p is not None:
                assert got >= p


@pytest.mark.parametrize("bad", [[0.1, 1.2], [-0.1], [math.nan]])
def test_out_of_range_p_values_are_refused(bad):
    with pytest.raises(ValueError):
        adjust_p_values(bad, "holm")


def test_unknown_method_is_refused():
    with pytest.raises(ValueError):
        adjust_p_values([0.1], "bonferroni")
