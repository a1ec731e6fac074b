"""Retrofitting methods: each a pure loss (``retrofit.losses``) plus a small trainer."""
