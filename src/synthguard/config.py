"""Settings: from ``SYNTHGUARD_*`` environment variables and an optional TOML file.

Precedence, highest first: explicit arguments, environment variables, the config file named by
``SYNTHGUARD_CONFIG`` (else ``./synthguard.toml`` if present), defaults. Secrets (signing keys) come
from here and never from code. Values marked (verify) in ``../shared/reference`` live here, each with
a comment, so a correction is a one-line change.

=============================  ==========================  ==========================================
setting                        environment variable        meaning
=============================  ==========================  ==========================================
``provider_code``              SYNTHGUARD_PROVIDER_CODE    ContentProducer written by ``label``
``propagator_code``            SYNTHGUARD_PROPAGATOR_CODE  ContentPropagator written by ``relabel``
``signing_algorithm``          SYNTHGUARD_SIGNING_ALGORITHM  ``ed25519`` or ``sm2``; empty: no signing
``signing_key``                SYNTHGUARD_SIGNING_KEY      private key: Ed25519 PEM, or SM2 hex
``signing_key_file``           SYNTHGUARD_SIGNING_KEY_FILE the same, read from a file
``trusted_keys_file``          SYNTHGUARD_TRUSTED_KEYS_FILE  public keys that detection trusts
``database_url``               SYNTHGUARD_DATABASE_URL     the store (default SQLite in ``data_dir``)
``data_dir``                   SYNTHGUARD_DATA_DIR         where the embedded store lives
``watermark_key``              SYNTHGUARD_WATERMARK_KEY    secret key of the invisible watermarks
``watermark_p_threshold``      SYNTHGUARD_WATERMARK_P_THRESHOLD  p-value below which a mark is found
=============================  ==========================  ==========================================

The trusted keys file is TOML: ``[keys]`` with one entry per key id, each ``{algorithm = "ed25519",
public_key = "<PEM or hex>"}``. The signing key's own public key is always trusted.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from synthguard.errors import ConfigError

__all__ = ["LabelRules", "Settings", "load_settings"]

ENV_PREFIX: Final = "SYNTHGUARD_"


@dataclasses.dataclass(frozen=True)
class LabelRules:
    """Character rules for label values (spec: "printable ASCII (verify the exact range)")."""

    #: (verify) The standard's allowed range; readers accept all printable ASCII.
    read_value_pattern: str = r"[\x20-\x7e]*"
    #: The safe set every known reader handles; what synthguard writes.
    write_value_pattern: str = r"[0-9A-Za-z._:\-]*"
    #: Longest member value written (a signature fits; anything longer is refused).
    max_value_length: int = 512

    @functools.cached_property
    def read_value_re(self) -> re.Pattern[str]:
        return re.compile(self.read_value_pattern)

    @functools.cached_property
    def write_value_re(self) -> re.Pattern[str]:
        return re.compile(self.write_value_pattern)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once."""

    provider_code: str = ""
    propagator_code: str = ""
    signing_algorithm: str = ""
    signing_key: str = dataclasses.field(default="", repr=False)
    signing_key_file: str = ""
    trusted_keys_file: str = ""
    database_url: str = ""
    data_dir: str = ".synthguard"
    #: Label kinds ``label`` applies when ``--kinds`` is not given.
    default_kinds: tuple[str, ...] = ("metadata",)

    # --- watermark ---
    #: Secret key of the invisible watermarks (at least 16 characters); empty: no watermarking.
    watermark_key: str = dataclasses.field(default="", repr=False)
    #: A watermark is declared found only when its p-value is below this.
    watermark_p_threshold: float = 1e-6

    def signing_key_text(self) -> str:
        """The private key text, from the inline setting or the key file ('' when none)."""
        if self.signing_key:
            return self.signing_key
        if self.signing_key_file:
            try:
                return Path(self.signing_key_file).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read signing key file {self.signing_key_file}: {exc}") from exc
        return ""

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'synthguard.db'}"


_FIELDS: Final = {f.name: f for f in dataclasses.fields(Settings)}


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _coerce(name: str, value: Any) -> Any:
    field_type = _FIELDS[name].type
    if field_type in ("bool", bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"setting {name} must be true or false, got {value!r}")
    if field_type in ("int", int, "float", float):
        number_type = int if field_type in ("int", int) else float
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"setting {name} must be a number, got {value!r}")
        try:
            return number_type(value)
        except ValueError as exc:
            raise ConfigError(f"setting {name} must be a number, got {value!r}") from exc
    if field_type in ("tuple[str, ...]", tuple[str, ...]):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"setting {name} must be a list of strings")
    if not isinstance(value, str):
        raise ConfigError(f"setting {name} must be a string, got {type(value).__name__}")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("synthguard", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [synthguard] must be a table")
    return section


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Resolve settings from defaults, the config file, the environment and ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_path = env.get(f"{ENV_PREFIX}CONFIG")
    if config_path:
        values.update(_read_file(Path(config_path)))
    elif Path("synthguard.toml").is_file():
        values.update(_read_file(Path("synthguard.toml")))
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown settings in config file: {', '.join(unknown)}")
    for name in _FIELDS:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    settings = Settings(**{name: _coerce(name, value) for name, value in values.items()})
    if settings.signing_algorithm not in ("", "ed25519", "sm2"):
        raise ConfigError(f"signing_algorithm must be ed25519 or sm2, got {settings.signing_algorithm!r}")
    return settings
