"""Where DSRL's data files live now, and fetching one with ``huggingface_hub``.

``dsrl`` 0.1.0 (PyPI) names each task's file after DSRL's original data host, which no longer
serves files. DSRL's maintainers publish the same files as the Hugging Face dataset
``YYY-45/DSRL`` (DSRL's current ``dsrl/infos.py`` points there; the file names are unchanged).
The table below gives, for every task retrofit supports, the file's name and, where known, its
SHA-256. MetaDrive's nine files are left out: retrofit does not support MetaDrive.

:func:`fetch_dsrl_file` calls ``huggingface_hub.hf_hub_download`` (``repo_type="dataset"``, the
pinned :data:`DSRL_REVISION`). ``huggingface_hub`` keeps the file in its own cache
(``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``), shows its progress bar, honours
``HF_ENDPOINT`` (mirrors) and ``HF_HUB_OFFLINE=1``, and finds a file already in its cache without
the network. Before a download, :func:`hub_reachable` opens one TCP connection to the Hub (or the
proxy) with a short timeout: without a network the clear ``DataError`` comes at once, not after
``huggingface_hub``'s five retries (≈ 23 s).

No SHA-256 of DSRL's files could be read from here, so the table holds none yet; for a file
without one, :func:`check_dsrl_file` records the digest the first time retrofit reads the file
(``retrofit-sha256.json`` beside it) and checks the file against it every later time.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from retrofit.atomic import atomic_write_text
from retrofit.data.validation import canonical_task
from retrofit.errors import DataError

DSRL_REPO_ID = "YYY-45/DSRL"
# The revision every download asks for. A branch name, because no commit id of the dataset could
# be read from here (no network); a commit id would make a download immune to later uploads.
DSRL_REVISION = "main"
_HUB = "https://huggingface.co"
CONNECT_TIMEOUT_S = 3.0
"""How long :func:`hub_reachable` waits for the name lookup and the TCP connection together."""


@dataclass(frozen=True)
class DSRLFile:
    """One of DSRL's data files: its name in ``YYY-45/DSRL`` and its SHA-256 (``None``: unknown)."""

    filename: str
    sha256: str | None = None


# env id -> file, as in DSRL's current dsrl/infos.py (the same names as dsrl 0.1.0's).
DSRL_FILES: dict[str, DSRLFile] = {
    # BulletGym
    "OfflineAntCircle-v0": DSRLFile("SafetyAntCircle-v0-200-5728.hdf5"),
    "OfflineAntRun-v0": DSRLFile("SafetyAntRun-v0-150-1816.hdf5"),
    "OfflineBallCircle-v0": DSRLFile("SafetyBallCircle-v0-80-886.hdf5"),
    "OfflineBallRun-v0": DSRLFile("SafetyBallRun-v0-80-940.hdf5"),
    "OfflineCarCircle-v0": DSRLFile("SafetyCarCircle-v0-100-1450.hdf5"),
    "OfflineCarRun-v0": DSRLFile("SafetyCarRun-v0-40-651.hdf5"),
    "OfflineDroneCircle-v0": DSRLFile("SafetyDroneCircle-v0-100-1923.hdf5"),
    "OfflineDroneRun-v0": DSRLFile("SafetyDroneRun-v0-140-1990.hdf5"),
    # SafetyGym: Car
    "OfflineCarButton1Gymnasium-v0": DSRLFile("SafetyCarButton1Gymnasium-v0-250-2656.hdf5"),
    "OfflineCarButton2Gymnasium-v0": DSRLFile("SafetyCarButton2Gymnasium-v0-300-3755.hdf5"),
    "OfflineCarCircle1Gymnasium-v0": DSRLFile("SafetyCarCircle1Gymnasium-v0-250-1271.hdf5"),
    "OfflineCarCircle2Gymnasium-v0": DSRLFile("SafetyCarCircle2Gymnasium-v0-400-940.hdf5"),
    "OfflineCarGoal1Gymnasium-v0": DSRLFile("SafetyCarGoal1Gymnasium-v0-120-1671.hdf5"),
    "OfflineCarGoal2Gymnasium-v0": DSRLFile("SafetyCarGoal2Gymnasium-v0-200-4105.hdf5"),
    "OfflineCarPush1Gymnasium-v0": DSRLFile("SafetyCarPush1Gymnasium-v0-200-2871.hdf5"),
    "OfflineCarPush2Gymnasium-v0": DSRLFile("SafetyCarPush2Gymnasium-v0-250-4407.hdf5"),
    # SafetyGym: Point
    "OfflinePointButton1Gymnasium-v0": DSRLFile("SafetyPointButton1Gymnasium-v0-200-2268.hdf5"),
    "OfflinePointButton2Gymnasium-v0": DSRLFile("SafetyPointButton2Gymnasium-v0-250-3288.hdf5"),
    "OfflinePointCircle1Gymnasium-v0": DSRLFile("SafetyPointCircle1Gymnasium-v0-200-1098.hdf5"),
    "OfflinePointCircle2Gymnasium-v0": DSRLFile("SafetyPointCircle2Gymnasium-v0-300-895.hdf5"),
    "OfflinePointGoal1Gymnasium-v0": DSRLFile("SafetyPointGoal1Gymnasium-v0-100-2022.hdf5"),
    "OfflinePointGoal2Gymnasium-v0": DSRLFile("SafetyPointGoal2Gymnasium-v0-200-3442.hdf5"),
    "OfflinePointPush1Gymnasium-v0": DSRLFile("SafetyPointPush1Gymnasium-v0-150-2379.hdf5"),
    "OfflinePointPush2Gymnasium-v0": DSRLFile("SafetyPointPush2Gymnasium-v0-200-3242.hdf5"),
    # SafetyGym: velocity
    "OfflineAntVelocityGymnasium-v1": DSRLFile("SafetyAntVelocityGymnasium-v1-250-2249.hdf5"),
    "OfflineHalfCheetahVelocityGymnasium-v1": DSRLFile(
        "SafetyHalfCheetahVelocityGymnasium-v1-250-2495.hdf5"
    ),
    "OfflineHopperVelocityGymnasium-v1": DSRLFile(
        "SafetyHopperVelocityGymnasium-v1-250-2240.hdf5"
    ),
    "OfflineSwimmerVelocityGymnasium-v1": DSRLFile(
        "SafetySwimmerVelocityGymnasium-v1-200-1686.hdf5"
    ),
    "OfflineWalker2dVelocityGymnasium-v1": DSRLFile(
        "SafetyWalker2dVelocityGymnasium-v1-300-2729.hdf5"
    ),
}


def dsrl_file(task: str) -> DSRLFile:
    """The ``DSRLFile`` of ``task`` (env id or short name); ``DataError`` for an unknown task."""
    env_id = str(canonical_task(task))
    if env_id not in DSRL_FILES:
        raise DataError(
            f"task={task!r}: no DSRL data file is known for it. Known: {sorted(DSRL_FILES)}."
        )
    return DSRL_FILES[env_id]


def hub_endpoint() -> str:
    """The Hub's address: ``$HF_ENDPOINT`` (a mirror), else ``https://huggingface.co``."""
    return os.environ.get("HF_ENDPOINT", _HUB).rstrip("/")


def dsrl_url(filename: str, revision: str = DSRL_REVISION) -> str:
    """The URL ``hf_hub_download`` fetches ``filename`` from (``HF_ENDPOINT`` replaces the host)."""
    return f"{hub_endpoint()}/datasets/{DSRL_REPO_ID}/resolve/{revision}/{filename}"


def hub_reachable(endpoint: str | None = None, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Whether one TCP connection to the Hub (or to ``$HTTPS_PROXY``, when set) opens within
    ``timeout`` seconds, name lookup included (it runs in a thread, since ``getaddrinfo`` has
    no timeout of its own)."""
    proxy = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(k)), None)
    url = urlsplit(proxy or endpoint or hub_endpoint())
    if not url.hostname:
        return False
    port = url.port or (443 if url.scheme == "https" else 80)
    opened: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((url.hostname, port), timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(opened)


def dsrl_folder() -> pathlib.Path:
    """DSRL's data folder: ``$DSRL_DATASET_DIR``, else ``dsrl``'s cache ``~/.dsrl/datasets``."""
    env_dir = os.environ.get("DSRL_DATASET_DIR")
    if env_dir:
        return pathlib.Path(env_dir).expanduser()
    from dsrl import offline_env

    return pathlib.Path(offline_env.DATASET_PATH).expanduser()


def sha256_of(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: str | os.PathLike[str], expected: str | None) -> None:
    """Raise ``DataError`` when ``path``'s SHA-256 is not ``expected`` (``None``: no check)."""
    if expected is None:
        return
    found = sha256_of(path)
    if found != expected.lower():
        raise DataError(
            f"{path}: SHA-256 {found} differs from DSRL's {expected}. The file is damaged or "
            "not DSRL's: delete it and download it again."
        )


DIGESTS_NAME = "retrofit-sha256.json"
"""Beside DSRL files: the SHA-256 each file without a known digest had when first read."""


def check_dsrl_file(path: str | os.PathLike[str], expected: str | None) -> None:
    """Check a DSRL file against ``expected`` (the table's SHA-256); without one, against the
    digest recorded in :data:`DIGESTS_NAME` beside it, recording it there on first sight (a
    folder that cannot be written records nothing). A mismatch is a ``DataError``."""
    if expected is not None:
        check_sha256(path, expected)
        return
    path = pathlib.Path(path)
    record = path.parent / DIGESTS_NAME
    try:
        known = json.loads(record.read_text()) if record.is_file() else {}
    except (OSError, ValueError) as exc:
        raise DataError(f"{record} is not readable JSON ({exc}): delete it, and retrofit records "
                        "each DSRL file's SHA-256 again when it next reads the file.") from exc
    found = sha256_of(path)
    recorded = known.get(path.name)
    if recorded is None:
        try:
            atomic_write_text(record, json.dumps({**known, path.name: found}, indent=2,
                                                 sort_keys=True))
        except OSError:
            pass
    elif recorded != found:
        raise DataError(
            f"{path}: SHA-256 {found} differs from {recorded}, recorded in {record} when "
            "retrofit first read the file: it changed since. Delete it and download it again, "
            f"or, if you replaced it on purpose, delete its entry in {record.name}."
        )


def fetch_dsrl_file(
    task: str,
    *,
    revision: str = DSRL_REVISION,
    cache_dir: str | os.PathLike[str] | None = None,
    sha256: str | None = None,
) -> pathlib.Path:
    """Path of ``task``'s DSRL file in ``huggingface_hub``'s cache, downloaded if it is not there.

    ``cache_dir`` defaults to ``huggingface_hub``'s (``HF_HUB_CACHE``); ``sha256`` overrides the
    table's hash. The file's SHA-256 is checked (:func:`check_dsrl_file`). Without the network and
    without the file in the cache, raises ``DataError`` naming the file, its URL and DSRL's folder
    (where a file put by hand is found first by ``TrajectoryDataset.from_dsrl``), within
    :data:`CONNECT_TIMEOUT_S` seconds (:func:`hub_reachable`) instead of after retries.
    """
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    entry = dsrl_file(task)
    where = {"repo_type": "dataset", "revision": revision, "endpoint": hub_endpoint(),
             "cache_dir": None if cache_dir is None else str(cache_dir)}
    try:
        try:  # the cache first: no network needed
            path = hf_hub_download(DSRL_REPO_ID, entry.filename, local_files_only=True, **where)
        except LocalEntryNotFoundError:
            if not constants.HF_HUB_OFFLINE and not hub_reachable():
                raise LocalEntryNotFoundError(
                    f"{hub_endpoint()} is unreachable (no connection within "
                    f"{CONNECT_TIMEOUT_S:g} s)") from None
            path = hf_hub_download(DSRL_REPO_ID, entry.filename, **where)
    except LocalEntryNotFoundError as exc:
        folder = dsrl_folder()
        raise DataError(
            f"DSRL's data file {entry.filename} for {canonical_task(task)} is neither in "
            f"huggingface_hub's cache nor downloadable here ({type(exc).__name__}: the network is "
            f"off or unreachable, or HF_HUB_OFFLINE is set). Fetch "
            f"{dsrl_url(entry.filename, revision)} on a machine with internet and put it in "
            f"{folder}/ (or set DSRL_DATASET_DIR to the folder holding it), or pass h5path=..."
        ) from exc
    except (RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise DataError(
            f"{dsrl_url(entry.filename, revision)} does not exist ({type(exc).__name__}): DSRL's "
            f"dataset {DSRL_REPO_ID} has no {entry.filename} at revision {revision!r}. Check "
            "the file name against DSRL's dsrl/infos.py and pass h5path=... to a copy you have."
        ) from exc
    check_dsrl_file(path, sha256 if sha256 is not None else entry.sha256)
    return pathlib.Path(path)
