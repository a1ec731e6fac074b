"""``retrofit suite TASK``: data, π_ref, PREFINE over the κ set × seeds, evaluation, table.

:mod:`retrofit.suite.settings` holds one row of settings per DSRL task (data collection, BC and
PREFINE steps, κ set, seeds); :mod:`retrofit.suite.runner` finds or makes the data and runs the
comparison harness (:mod:`retrofit.compare`) with them. Importing this package loads neither
torch nor the simulators.
"""

from retrofit.suite.settings import SETTINGS, CollectionSettings, TaskSettings, settings_for

__all__ = ["SETTINGS", "CollectionSettings", "TaskSettings", "settings_for"]
