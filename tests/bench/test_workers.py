"""The benchmarks' worker pool: results in job order, progress drained, a worker's error re-raised."""

import pytest
from v05_testing.jobs import square

from v05.bench.workers import run_in_workers


def test_results_come_back_in_job_order_with_every_progress_message():
    seen = []
    assert run_in_workers(square, [(3,), (1,), (2,)], workers=2, progress=lambda *m: seen.append(m)) == [9, 1, 4]
    assert sorted(seen) == [("done", 1), ("done", 2), ("done", 3)]


def test_a_worker_error_reaches_the_parent():
    with pytest.raises(ValueError, match="job -1 failed"):
        run_in_workers(square, [(2,), (-1,)], workers=1)
