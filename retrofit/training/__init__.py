"""The one training layer every method builds on: config base, trainer template, loop, samplers,
finite-value guard and checkpoints. Methods (``retrofit.methods``) only say how to set themselves
up and how to ``update``.
"""
