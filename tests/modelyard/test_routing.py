"""The sticky routing function both planes share: stable, proportional, minimal moves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelyard.routing import arm_index, assign_arm, cumulative_bounds, key_fraction

weight = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)
weight_vectors = st.integers(2, 5).flatmap(
    lambda n: st.lists(weight, min_size=n, max_size=n).filter(lambda w: sum(w) > 0)
)


@given(old=weight_vectors, data=st.data())
def test_a_weight_change_moves_only_the_keys_a_boundary_crossed(
    old: list[float], data: st.DataObject
) -> None:
    new = data.draw(
        st.lists(weight, min_size=len(old), max_size=len(old)).filter(lambda w: sum(w) > 0)
    )
    old_bounds, new_bounds = cumulative_bounds(old), cumulative_bounds(new)
    for i in range(300):
        fraction = key_fraction(f"user-{i}")
        moved = arm_index(old_bounds, fraction) != arm_index(new_bounds, fraction)
        crossed = any(
            min(o, n) <= fraction < max(o, n)
            for o, n in zip(old_bounds[:-1], new_bounds[:-1], strict=True)
        )
        assert moved == crossed, (fraction, old_bounds, new_bounds)


def test_moving_share_of_two_arms_is_the_weight_change() -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    moved = sum(assign_arm(k, [0.9, 0.1]) != assign_arm(k, [0.8, 0.2]) for k in keys)
    assert abs(moved / len(keys) - 0.1) < 0.01  # only the keys in [0.8, 0.9) moved
    assert all(assign_arm(k, [0.8, 0.2]) == 1 for k in keys if assign_arm(k, [0.9, 0.1]) == 1)


def test_the_server_router_uses_the_shared_function() -> None:
    from inference_server import routing

    assert routing.key_fraction is key_fraction
