"""The sizes the verifier and the probes run a model at: up to its axes' minimum and stride,
down within an artifact's limits."""

from __future__ import annotations

from rnnx.core.signature import Axis, Signature, TensorSpec


def test_sizes_move_up_to_a_front_end_and_down_within_a_limit() -> None:
    frames = Axis("time", min=400, multiple=160)  # a 25 ms window, 10 ms stride, at 16 kHz
    assert [frames.fit(n) for n in (1, 400, 401, 560, 561)] == [400, 400, 560, 560, 720]
    assert frames.fit(1000, limit=900) == 880  # the largest valid size within the limit
    assert frames.fit(1000, limit=300) == 1040  # none fits: the artifact refuses it, by name
    signature = Signature((TensorSpec("x", ("batch", "time", 3)),), (TensorSpec("y", ("batch",)),))
    assert signature.fit({"batch": 5, "time": 100}, {"time": 32}) == {"batch": 5, "time": 32}
    assert signature.fit({"batch": 5, "time": 7}, {"time": 32}) == {"batch": 5, "time": 7}
