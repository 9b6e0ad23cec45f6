"""Settings: defaults, the config file, the environment, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthguard.config import load_settings
from synthguard.errors import ConfigError


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "synthguard.toml"
    config.write_text('[synthguard]\nprovider_code = "FROMFILE"\npropagator_code = "P"\n')
    env = {"SYNTHGUARD_CONFIG": str(config), "SYNTHGUARD_PROVIDER_CODE": "FROMENV"}
    settings = load_settings(env)
    assert settings.provider_code == "FROMENV"
    assert settings.propagator_code == "P"
    assert load_settings(env, provider_code="ARG").provider_code == "ARG"


def test_secrets_are_not_in_repr() -> None:
    settings = load_settings({"SYNTHGUARD_SIGNING_KEY": "secret-key-text"})
    assert "secret-key-text" not in repr(settings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not toml [", "not valid TOML"),
        ('[synthguard]\nnope = "x"\n', "unknown settings"),
        ("[synthguard]\nprovider_code = 3\n", "must be a string"),
        ('[synthguard]\nsigning_algorithm = "rsa"\n', "ed25519 or sm2"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings({"SYNTHGUARD_CONFIG": str(config)})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"SYNTHGUARD_CONFIG": str(tmp_path / "none.toml")})


def test_default_kinds_from_environment() -> None:
    assert load_settings({"SYNTHGUARD_DEFAULT_KINDS": "metadata, visible"}).default_kinds == (
        "metadata",
        "visible",
    )
