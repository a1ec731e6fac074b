"""`retrofit compare TASK` without --dataset uses the file shipped for TASK (not BallRun's)."""

import json

import pytest
from typer.testing import CliRunner

from retrofit.cli import app
from retrofit.compare.harness import CompareConfig
from retrofit.compare.reference import load_dataset
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError, DataError


@pytest.mark.parametrize(("task", "env_id"), [("BallCircle", "OfflineBallCircle-v0"),
                                              ("CarRun", "OfflineCarRun-v0"),
                                              ("BallRun", "OfflineBallRun-v0")])
def test_default_dataset_is_the_tasks_shipped_file(tmp_path, task, env_id):
    config = CompareConfig(task=task, methods=("prefine",), out=tmp_path)
    dataset, path = load_dataset(config)
    assert dataset.task == env_id
    assert path == str(default_dataset_path(env_id))


def test_task_without_a_shipped_file_names_collect(tmp_path):
    config = CompareConfig(task="AntRun", methods=("prefine",), out=tmp_path)
    with pytest.raises(DataError, match="retrofit collect"):
        load_dataset(config)


@pytest.mark.parametrize("task", ["BallCircle", "CarRun"])
def test_compare_cli_loads_the_tasks_dataset(tmp_path, task):
    # A folder holding another comparison is refused right after the dataset is loaded and
    # hashed, before any training: reaching that error shows the default dataset was accepted.
    out = tmp_path / "out"
    out.mkdir()
    (out / "compare.json").write_text(json.dumps({"settings": {"task": "elsewhere"}}))
    result = CliRunner().invoke(app, ["compare", task, "--methods", "prefine", "--out", str(out)])
    assert isinstance(result.exception, ConfigError), result.output
    message = str(result.exception)
    assert "other settings" in message and "shipped dataset" not in message
