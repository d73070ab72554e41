"""Which config class each ``MTFSession`` version takes, and building a version's config from plain overrides.

The benchmark harness, the dataset tools and their datasheets name an environment by its Gymnasium id; this module is
the one place that maps that id to its config class (``MTFSession-v0``: :class:`~mtf_gym.config.MTFSessionConfig`,
``MTFSession-v1``: :class:`~mtf_gym.sim.config.MTFSessionV1Config`) and back, so no caller hard-codes a version.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mtf_gym.config import MTFSessionConfig
from mtf_gym.sim.config import MTFSessionV1Config
from mtf_gym.validation import merge_nested

__all__ = ["DEFAULT_SESSION_ENV_ID", "SESSION_ENV_IDS", "AnyConfig", "config_class_for", "env_id_of", "make_env_config"]

AnyConfig = MTFSessionConfig | MTFSessionV1Config

# The same ids as ``mtf_gym.ENV_ID_V0`` / ``mtf_gym.ENV_ID`` (spelled out here: this module is imported by the
# package's ``__init__``); a test checks that they agree.
SESSION_ENV_IDS: dict[str, type] = {
    "MTFSession-v0": MTFSessionConfig,
    "MTFSession-v1": MTFSessionV1Config,
}
DEFAULT_SESSION_ENV_ID = "MTFSession-v1"


def config_class_for(env_id: str) -> type:
    """The config class of the ``MTFSession`` version ``env_id``; ``ValueError`` naming the known ids otherwise."""
    try:
        return SESSION_ENV_IDS[env_id]
    except (KeyError, TypeError):
        raise ValueError(f"env_id must be one of {sorted(SESSION_ENV_IDS)}, got {env_id!r}") from None


def env_id_of(config: AnyConfig) -> str:
    """The Gymnasium id of the version a config runs (its type decides, as in the envs)."""
    for env_id, cls in SESSION_ENV_IDS.items():
        if type(config) is cls:
            return env_id
    raise TypeError(f"config must be one of {[c.__name__ for c in SESSION_ENV_IDS.values()]}, got "
                    f"{type(config).__name__}")


def _check_keys(cls: type, overrides: dict[str, Any], where: str, env_id: str) -> None:
    """Every key of ``overrides`` must be a field of ``cls`` (recursively into nested config dataclasses)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        inside = f" in {where.rstrip('.')}" if where else ""
        raise ValueError(f"unknown {env_id} config field(s) {[where + u for u in unknown]} ({cls.__name__}); "
                         f"allowed names{inside}: {sorted(fields)}")
    for name, value in overrides.items():
        default = fields[name].default_factory if fields[name].default_factory is not dataclasses.MISSING else None
        sub = default() if default is not None else None
        if isinstance(value, dict) and dataclasses.is_dataclass(sub):
            _check_keys(type(sub), value, f"{where}{name}.", env_id)


def make_env_config(env_id: str, overrides: dict[str, Any] | None = None) -> AnyConfig:
    """The config of version ``env_id``: its defaults with ``overrides`` merged in (nested tables merge).

    ``overrides`` is a plain nested mapping such as a preset's ``env`` table or a datasheet's ``env_config`` (a
    full ``to_dict()``, which rebuilds the config exactly). A key that is not a field of that version's config
    raises ``ValueError`` naming it and the allowed names; a bad value raises the config's own error.
    """
    cls = config_class_for(env_id)
    overrides = dict(overrides or {})
    _check_keys(cls, overrides, "", env_id)
    return cls.from_dict(merge_nested(cls().to_dict(), overrides))
