"""Settings shared by every ``retrofit`` subcommand: ``--config FILE``, ``--set``, deprecated
option spellings and the ``resolved_config.json`` a run leaves beside its outputs.

The rule (docs/cli.md): a config file gives values for options (its keys are option names,
``cost_threshold`` or ``cost-threshold``); an option given on the command line wins over the
file; anything else in the file is a method config field, read as ``--set KEY=VALUE`` (refused
by the same checks) by the subcommands that train, and an unknown key elsewhere. The resolved
config a run writes holds every option's final value, so ``--config resolved_config.json``
runs it again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.errors import ConfigError

RESOLVED_CONFIG = "resolved_config.json"
"""File name of the resolved config written beside a run's outputs."""

_FILE_SET = "retrofit.config_set"
"""``ctx.meta`` key of the ``--set`` entries a config file gave."""

NULL_SPELLINGS: dict[str, Any] = {"reference_std": 0.0}
"""Options whose ``null`` in a config file means a value of their own (click would take the
option's default instead): ``retrofit compare`` wrote ``reference_std: null`` for its
tanh-Gaussian π_ref until the default became 0.2 (issue 25); the option spells it 0 now, so
those resolved configs still rerun the runs they came from."""


def values_before_the_option() -> dict[str, Any]:
    """Options added together with a new default, and the value runs had before: a resolved
    config (it names its ``command`` and holds every option that command had) without the option
    was written before it existed, so it reruns its run with this value. ``top_fraction``: D_p
    from the better half of SAFE until amendment 6 of docs/protocol.md made the N_p best the
    default (imported here, not at module level: the data package is slow to import)."""
    from retrofit.data.splits import PAPER_TOP_FRACTION

    return {"top_fraction": PAPER_TOP_FRACTION}


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file's mapping: JSON for ``.json``, YAML otherwise (YAML also reads JSON)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc.strerror}).") from None
    if Path(path).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config {path}: not valid JSON ({exc}).") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            message = " ".join(str(exc).split())
            raise ConfigError(f"--config {path}: not valid YAML ({message}).") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the file must hold a mapping of option names to "
                          f"values, not a {type(data).__name__}.")
    return data


def set_entries(value: Any, path: Path) -> list[str]:
    """A config file's ``set`` value (``{FIELD: V}``, ``{METHOD: {FIELD: V}}``,
    ``{"METHOD.FIELD": V}`` or a list of ``KEY=VALUE`` strings) as ``--set`` strings."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    if not isinstance(value, dict):
        raise ConfigError(f"--config {path}: 'set' must map FIELD or METHOD.FIELD to a value.")
    out = []
    for key, item in value.items():
        if isinstance(item, dict):
            out += [f"{key}.{field}={json.dumps(v)}" for field, v in item.items()]
        else:
            out.append(f"{key}={json.dumps(item)}")
    return out


def load_config(ctx: Any, param: Any, value: Path | None) -> Path | None:
    """``--config`` callback (eager): the file's option values become the command's defaults
    (``ctx.default_map``, so an option on the command line wins) and its other keys ``--set``
    entries; an unknown key is a ConfigError naming it."""
    if value is None:
        return None
    data = read_config_file(value)
    resolved = "command" in data  # written by a run: every option it had is in it
    command = data.pop("command", ctx.info_name)
    if command != ctx.info_name:
        raise ConfigError(f"--config {value} is for `retrofit {command}`, not `retrofit "
                          f"{ctx.info_name}`.")
    params = {p.name: p for p in ctx.command.params if p.name not in ("config", "set_")}
    takes_set = any(p.name == "set_" for p in ctx.command.params)
    defaults: dict[str, Any] = {}
    extra: list[str] = []
    for key, item in data.items():
        name = str(key).replace("-", "_")
        if name == "quiet" and "progress" in params:
            name, item = "progress", not item
        if name == "set" and takes_set:
            extra += set_entries(item, value)
        elif name in params:
            if item is None and name in NULL_SPELLINGS:
                item = NULL_SPELLINGS[name]
            multiple = getattr(params[name], "multiple", False)
            if isinstance(item, list) and not multiple:  # e.g. methods: [prefine, bc-safe]
                item = ",".join(str(v) for v in item)
            defaults[name] = item
        elif takes_set:
            extra.append(f"{key}={json.dumps(item)}")
        else:
            options = ", ".join(sorted(n for n in params if not params[n].hidden))
            raise ConfigError(f"--config {value}: unknown key {key!r}; `retrofit "
                              f"{ctx.info_name}` takes: {options}.")
    if resolved:
        keys = {str(k).replace("-", "_") for k in data}
        defaults.update({name: item for name, item in values_before_the_option().items()
                         if name in params and name not in keys})
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta[_FILE_SET] = extra
    return value


def option_flag(name: str) -> str:
    """``log_dir`` → ``--log-dir``."""
    return "--" + name.replace("_", "-")


def given(ctx: Any, name: str) -> bool:
    """Whether option ``name`` came from the command line, the environment or a config file."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT", "DEFAULT_MAP")


def resolve(ctx: Any, renamed: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values a command runs with: its options, each deprecated spelling (``renamed``: old
    parameter → new one) moved to its new name with a warning, and ``set`` as the config file's
    entries followed by the command line's (a later entry for the same key wins)."""
    import typer

    values = {k: v for k, v in ctx.params.items() if k != "config"}
    for old, new in (renamed or {}).items():
        value = values.pop(old)
        if not given(ctx, old):
            continue
        if given(ctx, new):
            raise ConfigError(f"{option_flag(old)} and {option_flag(new)} give the same "
                              f"setting; give it once, as {option_flag(new)}.")
        typer.echo(f"warning: {option_flag(old)} is deprecated for `retrofit {ctx.info_name}`; "
                   f"use {option_flag(new)}.", err=True)
        values[new] = value
    if "set_" in values:
        values["set"] = list(ctx.meta.get(_FILE_SET, [])) + list(values.pop("set_") or [])
    return values


def assignments(items: Sequence[str] | None, example: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict; JSON values (``2``, ``0.5``, ``true``) are parsed."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: use {example}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


SET_EXAMPLE = "FIELD=VALUE or METHOD.FIELD=VALUE, e.g. beta=0.2 or prefine.beta=0.2"


def method_overrides(items: Sequence[str] | None, method: str) -> dict[str, Any]:
    """``--set`` of a command that trains one method: ``FIELD=VALUE`` or ``METHOD.FIELD=VALUE``
    where METHOD is the one it trains; a field the method's config lacks is refused here."""
    fields = _fields(method)
    out: dict[str, Any] = {}
    for key, value in assignments(items, SET_EXAMPLE).items():
        name, dot, field = key.partition(".")
        if dot and name != method:
            raise ConfigError(f"--set {key}=...: this run trains {method!r}, not {name!r}; use "
                              f"{field}=VALUE or {method}.{field}=VALUE.")
        field = field if dot else key
        if field not in fields:
            raise ConfigError(f"--set {key}=...: {method!r} has no field {field!r}; valid: "
                              f"{', '.join(sorted(fields))}.")
        out[field] = value
    return out


def _fields(method: str) -> set[str]:
    """The config field names of a registered method."""
    import dataclasses

    from retrofit.methods.registry import get_method

    return {f.name for f in dataclasses.fields(get_method(method).load()[1])}


def harness_overrides(items: Sequence[str] | None, methods: Sequence[str]
                      ) -> dict[str, dict[str, Any]]:
    """``--set`` of compare/suite: ``METHOD.FIELD=VALUE`` for one method, ``FIELD=VALUE`` for
    every method of ``methods`` whose config has FIELD (refused when none has it)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in assignments(items, SET_EXAMPLE).items():
        method, dot, field = key.partition(".")
        if dot:
            out.setdefault(method, {})[field] = value
            continue
        takers = [m for m in methods if key in _fields(m)]
        if not takers:
            raise ConfigError(f"--set {key}=...: no method of --methods ({', '.join(methods)}) "
                              f"has a field {key!r}; use METHOD.FIELD=VALUE (`retrofit methods`).")
        for method in takers:
            out.setdefault(method, {})[key] = value
    return out


def write_resolved_config(path: Path, command: str, values: Mapping[str, Any]) -> Path:
    """Write ``values`` (from :func:`resolve`) as JSON a later ``--config`` reads back."""
    def plain(value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    data: dict[str, Any] = {"command": command}
    for key, value in sorted(values.items()):
        if key == "set":
            data["set"] = assignments(value, SET_EXAMPLE)
        else:
            data[key] = plain(value)
    atomic_write_text(Path(path), json.dumps(data, indent=2) + "\n")
    return Path(path)
