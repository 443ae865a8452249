"""Properties of SPEC §5 step 4 that follow from its integer arithmetic, and the split's fairness."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from webapp.services.runtime.bucketing import TWO_64, assign_position, bucket_value, choose_position

hashes = st.integers(min_value=0, max_value=TWO_64 - 1)
weights_lists = st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=10)


@given(h=hashes, weights=weights_lists, factor=st.integers(min_value=1, max_value=10_000))
def test_scaling_the_weights_never_moves_a_visitor(h, weights, factor):
    # h·kW < kC·2^64  ⇔  h·W < C·2^64: 1/1, 50/50 and 7/7 are the same split for every visitor.
    assert choose_position(h, [w * factor for w in weights]) == choose_position(h, weights)


@given(visitor=st.text(min_size=1, max_size=200), experiment_id=st.integers(min_value=1, max_value=2**31 - 1),
       factor=st.integers(min_value=2, max_value=5_000))
def test_scaled_weights_give_each_visitor_the_same_variant(visitor, experiment_id, factor):
    assert assign_position(experiment_id, visitor, [factor, factor]) == assign_position(experiment_id, visitor, [1, 1])


@given(h=hashes, weights=weights_lists, added=st.integers(min_value=1, max_value=10_000))
def test_appending_a_variant_moves_visitors_only_as_the_arithmetic_says(h, weights, added):
    """Appending weight w to w_1…w_k (W → W' = W + w), for a visitor at old position i with cumulative C_i:

    - it never moves to a lower position (every boundary C_j·2^64/W shrinks to C_j·2^64/W');
    - it stays exactly when h·W' < C_i·2^64;
    - it lands in the new variant exactly when h·W' ≥ W·2^64 (the top w/W' of the hash space).
    """
    old = choose_position(h, weights)
    new = choose_position(h, [*weights, added])
    total = sum(weights)
    cumulative = sum(weights[: old + 1])
    assert new >= old
    assert (new == old) == (h * (total + added) < cumulative * TWO_64)
    assert (new == len(weights)) == (h * (total + added) >= total * TWO_64)


@pytest.mark.parametrize("weights", [[1, 1], [1, 2, 7], [90, 10], [3, 3, 3, 1]])
def test_split_matches_the_weights_over_100k_ids(weights):
    """Pearson χ² of 100,000 fixed visitor ids against the normalised weights (deterministic)."""
    n = 100_000
    counts = Counter(choose_position(bucket_value(42, f"visitor-{i}"), weights) for i in range(n))
    observed = [counts[p] for p in range(len(weights))]
    expected = [n * w / sum(weights) for w in weights]
    assert chisquare(observed, expected).pvalue > 0.001
