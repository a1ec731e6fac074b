"""Heterogeneous human feedback for PreSa: segment-pair preferences + per-segment safety labels.

``synthesize(dataset, ...)`` builds it from ground truth as PreSa's paper does;
``load(path)`` / ``Feedback.save(path)`` move it through a documented HDF5 format
(:mod:`retrofit.feedback.io`), so real human labels come in the same way. No torch here.
"""

from retrofit.feedback.core import SAFE, UNSAFE, Feedback, dataset_fingerprint
from retrofit.feedback.io import FORMAT, is_feedback_file, load, save
from retrofit.feedback.synthesis import segment_threshold, synthesize, valid_segment_starts

__all__ = [
    "FORMAT",
    "SAFE",
    "UNSAFE",
    "Feedback",
    "dataset_fingerprint",
    "is_feedback_file",
    "load",
    "save",
    "segment_threshold",
    "synthesize",
    "valid_segment_starts",
]
