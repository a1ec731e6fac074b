"""Preference losses as small pure functions of log-probabilities (no datasets, no optimisers)."""
