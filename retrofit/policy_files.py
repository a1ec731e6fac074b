"""Policies as files, whatever their kind: retrofit ``.pt``, stable-baselines3 ``.zip`` and
d3rlpy ``.d3``. Loading gives the user's own object; saving writes it back in the same format,
so ``retrofit fit`` hands back what it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrofit.errors import PolicyError
from retrofit.sb3_files import resolve_algo


def policy_format(path: str | Path) -> str:
    """``"retrofit"`` (.pt), ``"sb3"`` (.zip) or ``"d3rlpy"`` (.d3), from the file name."""
    suffix = Path(path).suffix.lower()
    formats = {".pt": "retrofit", ".zip": "sb3", ".d3": "d3rlpy"}
    if suffix not in formats:
        raise PolicyError(
            f"{path} is not a retrofit policy file (.pt, from save_policy), a stable-baselines3 "
            ".zip or a d3rlpy .d3 file."
        )
    return formats[suffix]


def load_policy_file(path: str | Path, algo: str | None = None) -> Any:
    """Load a policy file as the user's own object (module, SB3 model, d3rlpy algorithm).

    An SB3 ``.zip`` loads through the algorithm recorded in it; ``algo`` (``--algo``), if
    given, must name that algorithm.
    """
    path = Path(path)
    kind = policy_format(path)
    if not path.is_file():
        raise PolicyError(f"no such policy file: {path}.")
    if kind == "retrofit":
        from retrofit.policies.io import load_policy

        return load_policy(path)
    if kind == "sb3":
        name = resolve_algo(path, algo)  # the file's own algorithm; a contrary --algo is refused
        import stable_baselines3

        try:
            return getattr(stable_baselines3, name).load(str(path), device="cpu")
        except Exception as exc:  # SB3 raises assorted errors for damaged files; name the file
            raise PolicyError(f"stable-baselines3 cannot load {path} as {name}: {exc}") from exc
    import d3rlpy

    try:
        return d3rlpy.load_learnable(str(path), device="cpu:0")
    except Exception as exc:  # d3rlpy raises assorted errors for foreign files; name the file
        raise PolicyError(f"{path} is not a d3rlpy .d3 file d3rlpy can load: {exc}") from exc


def save_policy_file(policy: Any, path: str | Path) -> Path:
    """Write ``policy`` (what ``load_policy_file`` returned, or its retrofitted twin) to
    ``path`` in that format, atomically."""
    from retrofit.atomic import atomic_write

    path = Path(path)
    kind = policy_format(path)
    if kind == "retrofit":
        from retrofit.policies.io import save_policy

        return save_policy(policy, path)
    if kind == "sb3":
        # SB3 appends ".zip" to a name without it; the temp name ends in .tmp, so save to a
        # temp .zip and rename that.
        return atomic_write(path, lambda tmp: _save_sb3(policy, tmp))
    return atomic_write(path, lambda tmp: policy.save(str(tmp)))


def _save_sb3(model: Any, tmp: Path) -> None:
    target = tmp.with_suffix(".zip")
    model.save(str(target))
    target.replace(tmp)
