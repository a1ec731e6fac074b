"""Package list for setuptools (all other metadata lives in pyproject.toml).

Every package under ``retrofit/`` is found automatically, and the top-level ``adapters/`` folder
(and any package inside it) is published as ``retrofit.adapters``, as ``package-dir`` in
pyproject.toml maps it. Finding packages rather than listing them keeps new subpackages (such as
``retrofit.suite``) from being left out of the wheel.
"""

from setuptools import find_packages, setup

ADAPTERS = ["retrofit.adapters", *(f"retrofit.adapters.{pkg}" for pkg in find_packages("adapters"))]

setup(packages=[*find_packages(include=["retrofit", "retrofit.*"]), *ADAPTERS])
