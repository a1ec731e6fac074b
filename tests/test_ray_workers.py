"""``--executor ray`` honours ``--workers`` (issue 25): a local Ray instance started for a sweep
gets ``workers × threads`` CPUs, not every CPU of the machine."""

from __future__ import annotations

import importlib.util

import pytest

from retrofit.compare import CompareConfig
from retrofit.compare.executors import ray_session

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed (pip install ray)")


def test_local_ray_gets_workers_times_threads_cpus(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    import ray

    assert not ray.is_initialized()
    config = CompareConfig(task="OfflineBallRun-v0", methods=("prefine",), out=tmp_path,
                           executor="ray", workers=1, threads=1)
    with ray_session(config):
        assert ray.cluster_resources()["CPU"] == 1.0
    assert not ray.is_initialized()  # what the sweep started, it shut down
