import pytest

from webapp.services.runtime.bucketing import TWO_64, assign_position, bucket_value, choose_position, weight_ranges

VECTORS = [
    (1, "v-1", [1, 1], 1, "ba7c3a783926980e"),
    (1, "v-1", [50, 50], 1, "ba7c3a783926980e"),
    (7, "visitor-42", [1, 1], 1, "b935e9f530ff1976"),
    (7, "visitor-42", [1, 2, 7], 2, "b935e9f530ff1976"),
    (123, "alice@example.com", [90, 10], 0, "9762c6b6453499b0"),
    (5, "ü-ñicode", [3, 1], 0, "2e531f7a364d3fea"),
]


@pytest.mark.parametrize("experiment_id,visitor_id,weights,position,prefix", VECTORS)
def test_spec_vectors(experiment_id, visitor_id, weights, position, prefix):
    assert bucket_value(experiment_id, visitor_id) == int(prefix, 16)
    assert assign_position(experiment_id, visitor_id, weights) == position


def test_boundaries_are_exact():
    assert choose_position(0, [1, 1]) == 0
    assert choose_position(TWO_64 // 2 - 1, [1, 1]) == 0
    assert choose_position(TWO_64 // 2, [1, 1]) == 1
    assert choose_position(TWO_64 - 1, [1, 1, 1]) == 2


def test_ranges_partition_the_space():
    ranges = weight_ranges([1, 2, 7])
    assert ranges[0][0] == 0 and ranges[-1][1] == TWO_64
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for position, (low, high) in enumerate(ranges):
        assert choose_position(low, [1, 2, 7]) == position
        assert choose_position(high - 1, [1, 2, 7]) == position


@pytest.mark.parametrize("weights", [[], [0, 1], [-1, 2]])
def test_bad_weights(weights):
    with pytest.raises(ValueError):
        choose_position(1, weights)
