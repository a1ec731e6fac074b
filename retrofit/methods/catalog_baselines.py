"""Catalog of the baselines methods for the registry (filled in by their issue)."""

from retrofit.methods.registry import MethodSpec

METHODS: list[MethodSpec] = []
