"""Figures (issue 25): κ labels that never overlap, learning curves with every metric (the
log-likelihoods ``logps/*`` included, no 8-panel cap), an x-axis label on every plot, a curves PNG
and hparams for ``--log tensorboard`` runs."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from retrofit.cli import app
from retrofit.collect import plot_dataset
from retrofit.compare import CompareConfig
from retrofit.compare.report import safe_fraction_figure, scatter_figure
from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.metrics_log import CSVLogger
from retrofit.plotting import (
    mark_thresholds,
    plot_training_metrics,
    read_metrics,
    training_metrics_figure,
)
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import save_policy
from retrofit.pretrain import action_bounds


@pytest.fixture(scope="module")
def ballrun() -> TrajectoryDataset:
    return TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG's IHDR chunk."""
    return struct.unpack(">II", path.read_bytes()[16:24])


def test_threshold_labels_never_overlap(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    carcircle = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineCarCircle-v0"))
    fig = Figure(figsize=(6.4, 4.4), dpi=120)  # plot_dataset's size
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    rewards, costs = carcircle.episode_returns()
    ax.scatter(costs, rewards, s=8)  # cost axis 0–263: the labels of κ = 10 and 20 collided
    labels = mark_thresholds(ax, (10.0, 20.0, 40.0))
    fig.tight_layout()
    canvas.draw()
    boxes = [t.get_window_extent(canvas.get_renderer()) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    assert [t.get_text() for t in labels] == [" κ=10", " κ=20", " κ=40"]
    assert plot_dataset(carcircle, tmp_path / "dataset.png").stat().st_size > 10_000


def write_metrics(path: Path, names: list[str], steps: int = 4) -> None:
    logger = CSVLogger(path, flush_every=1)
    for step in range(1, steps + 1):
        logger.log(step, {name: torch.tensor(float(step * (i + 1))) for i, name in
                          enumerate(names)})
    logger.close()


def test_learning_curves_draw_every_metric_log_likelihoods_included(tmp_path):
    names = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
             "kl", "grad_norm", "loss", "loss/bc", "lr", "entropy", "logps/chosen",
             "logps/rejected"]
    write_metrics(tmp_path / "metrics.csv", names)
    fig = training_metrics_figure(tmp_path / "metrics.csv")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 12
    assert titles[:4] == ["loss", "loss/bc", "logps/chosen", "logps/rejected"]
    assert all(ax.get_xlabel() == "training step" for ax in fig.axes)
    path = plot_training_metrics(tmp_path / "curves.png", tmp_path / "metrics.csv")
    assert png_size(path) == (4 * 3.2 * 120, 3 * 2.5 * 120)  # 3 rows of 4: nothing dropped


def test_compare_figures_label_both_axes(tmp_path):
    config = CompareConfig(task="OfflineBallRun-v0", methods=("prefine", "bc-safe"), out=tmp_path,
                           cost_thresholds=(20.0,))
    row = {"task": "OfflineBallRun-v0", "cost_threshold": 20.0, "normalized_reward": 0.3,
           "normalized_cost": 0.5, "train_wall_clock_s": 2.0, "updates": 10,
           "updates_per_s": 5.0, "peak_rss_mb": 100.0, "time_to_safe_s": None, "device": "cpu"}
    records = [{"row": {**row, "method": m}, "checkpoints": []} for m in config.methods]
    meta = {"references": [{"normalized_reward": 0.9, "seed": 0}]}
    for fig in (scatter_figure(records, meta, config), safe_fraction_figure(records, config)):
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel()


def test_tensorboard_fit_gets_curves_png_and_hparams(ballrun, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    torch.manual_seed(0)
    save_policy(TanhGaussianPolicy(ballrun.observation_dim, ballrun.action_dim,
                                   *action_bounds(ballrun), hidden_sizes=(16, 16)),
                tmp_path / "ref.pt")
    result = CliRunner().invoke(app, [
        "fit", str(tmp_path / "ref.pt"), str(default_dataset_path("OfflineBallRun-v0")),
        "--cost-threshold", "20", "--steps", "3", "--set", "batch_size=8", "--log",
        "tensorboard", "--out", str(tmp_path / "out.pt"), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out_fit"
    assert not (folder / "metrics.csv").exists()
    assert (folder / "learning_curves.png").stat().st_size > 10_000
    assert json.loads((folder / "report.json").read_text())["learning_curves"] == \
        "learning_curves.png"
    steps, values = read_metrics(folder)
    assert steps.tolist() == [1.0, 2.0, 3.0] and any(n.startswith("logps/") for n in values)

    events = EventAccumulator(str(folder))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["method"].string_value == "prefine"
    assert start.hparams["seed"].number_value == 0 and start.hparams["steps"].number_value == 3
    assert start.hparams["batch_size"].number_value == 8
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    shown = {m.name.tag for m in experiment.metric_infos}
    assert "loss" in shown and any(tag.startswith("logps/") for tag in shown)
