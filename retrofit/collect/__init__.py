"""Make DSRL-format datasets in the real environments (``retrofit collect``).

PPO behaviour policies trained on the cost-shaped reward ``r - k·s·c`` for several penalties
``k`` (:mod:`retrofit.collect.behaviour`), snapshot at several points of training, are rolled
out with several levels of Gaussian action noise (:mod:`retrofit.collect.collector`). The result
mixes safe and unsafe episodes across the reward range, like DSRL's own data. Importing this
package loads neither stable-baselines3 nor the simulators.
"""

from retrofit.collect.behaviour import BehaviourConfig, BehaviourPolicy, train_behaviour_policies
from retrofit.collect.collector import (
    CollectConfig,
    collect,
    collect_dataset,
    dataset_stats,
    dsrl_filename,
    plot_dataset,
    rollout_episode,
)

__all__ = [
    "BehaviourConfig",
    "BehaviourPolicy",
    "CollectConfig",
    "collect",
    "collect_dataset",
    "dataset_stats",
    "dsrl_filename",
    "plot_dataset",
    "rollout_episode",
    "train_behaviour_policies",
]
