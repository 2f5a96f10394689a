import math

import pytest

from geomopt.report.tokens import mean_interval, tokens_to_target


def test_tokens_to_target_interpolates_log_loss():
    tokens = [0, 100, 200]
    losses = [4.0, 2.0, 1.0]
    # log-linear between (100, 2) and (200, 1): log 1.5 sits at fraction log(2/1.5)/log 2
    expect = 100 + 100 * math.log(2 / 1.5) / math.log(2)
    assert tokens_to_target(tokens, losses, 1.5) == pytest.approx(expect)
    assert tokens_to_target(tokens, losses, 4.0) == 0
    assert tokens_to_target(tokens, losses, 0.5) == math.inf
    assert tokens_to_target([0, 1, 2], [float("nan"), 3.0, 1.0], 3.0) == 1


def test_mean_interval():
    iv = mean_interval([0.1, 0.2, 0.3])
    assert iv.mean == pytest.approx(0.2) and iv.low < 0.2 < iv.high and iv.n == 3
    assert math.isnan(mean_interval([0.5]).low)
    assert "+50.0%" in mean_interval([0.5]).fmt()


def test_mean_interval_counts_a_failed_run():
    iv = mean_interval([0.1, float("nan"), 0.3])
    assert iv.n == 3 and iv.failed == 1 and math.isnan(iv.mean) and "1/3 runs failed" in iv.fmt()
