"""Run settings (precedence: arguments > env vars > `.env` > `connector.toml` > defaults), checked once."""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from connector.errors import ConfigError

DEFAULT_BASE_URL = "https://api.hubapi.com"
CONFIG_FILE = "connector.toml"  # found in the working directory, or wherever CONNECTOR_CONFIG points
log = logging.getLogger(__name__)


def config_path() -> Path:
    return Path(os.environ.get("CONNECTOR_CONFIG") or CONFIG_FILE)


class Settings(BaseSettings):
    """Every setting, its environment variable being ``CONNECTOR_<NAME>`` (README lists them)."""

    model_config = SettingsConfigDict(env_prefix="CONNECTOR_", env_file=".env", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # arguments > environment > .env > connector.toml > defaults
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return init_settings, env_settings, dotenv_settings, toml, file_secret_settings

    # Auth: a private-app token, or OAuth (client id + secret + refresh token).
    token: SecretStr | None = Field(default=None, description="HubSpot private-app access token")
    client_id: str | None = Field(default=None, description="OAuth client id")
    client_secret: SecretStr | None = Field(default=None, description="OAuth client secret")
    refresh_token: SecretStr | None = Field(default=None, description="OAuth refresh token")

    base_url: str = Field(default=DEFAULT_BASE_URL, description="HubSpot API base URL (the sandbox's in tests)")
    state_url: str = Field(
        default="sqlite:///.connector/state.db",
        description="SQLAlchemy URL of the state store (SQLite file by default, postgresql+psycopg://… for teams)",
    )
    mappings_dir: Path = Field(default=Path("mappings"), description="folder of the mapping pack")

    # Pacing: None = learn from X-HubSpot-RateLimit-* headers (start at the Free/Starter figure).
    burst_limit: int | None = Field(default=None, description="requests per 10 s to allow (default: learnt)")
    search_per_second: float = Field(default=4.0, description="search requests per second (HubSpot allows 5)")
    daily_reserve: int = Field(default=1000, description="daily calls left untouched for other integrations")
    request_timeout: float = Field(default=30.0, description="seconds before a request is abandoned and retried")
    max_retries: int = Field(default=16, description="attempts per call for retryable failures (max_retry_seconds binds first)")
    max_retry_seconds: float = Field(default=120.0, description="total seconds one call may spend retrying")
    lookback_seconds: int = Field(default=300, description="incremental pulls re-read this window before the cursor")

    @field_validator("base_url")
    @classmethod
    def _api_root(cls, value: str) -> str:
        # The API root only: every call appends its own path (/crm/v3/...), so a pasted endpoint would double it.
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http(s) URL such as https://api.hubapi.com or the sandbox's "
                             "http://127.0.0.1:8765")
        if parsed.path.strip("/") or parsed.query or parsed.fragment:
            root = f"{parsed.scheme}://{parsed.netloc}"
            raise ValueError(f"must be the API root without a path (every call adds its own): use {root}")
        return f"{parsed.scheme}://{parsed.netloc}"

    @field_validator("token", "client_id", "client_secret", "refresh_token", mode="before")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        # A token pasted with its line break would be sent in a header and refused by HubSpot as "unauthorized";
        # the value itself is never repeated (it is a secret).
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise ValueError("contains a control character (a line break or tab pasted with it?): paste it again")
        return value


SECRET_FIELDS = frozenset({"token", "client_secret", "refresh_token"})


def load_settings(**overrides: object) -> Settings:
    """Settings from arguments, env, .env and connector.toml; a bad value is a ConfigError naming its variable
    (exit 2), an unknown key of connector.toml too; a CONNECTOR_* variable that is no setting is warned about."""
    file_values = _config_file()
    _warn_unknown_variables()
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_setting_problem(err) for err in exc.errors())) from None
    return _relative_to_config(settings, file_values, set(overrides))


def _names() -> list[str]:
    return list(Settings.model_fields)


def _config_file() -> dict[str, object]:
    path = config_path()
    if not path.is_file():
        if os.environ.get("CONNECTOR_CONFIG"):
            raise ConfigError(f"CONNECTOR_CONFIG: the settings file {path} does not exist")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable TOML file ({exc})") from None
    unknown = [key for key in values if key not in Settings.model_fields]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, _names(), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"{path}: unknown setting {', '.join(hints)}; valid: {', '.join(_names())}")
    return values


def _warn_unknown_variables() -> None:
    known = {f"CONNECTOR_{name.upper()}" for name in _names()} | {"CONNECTOR_CONFIG"}
    for variable in sorted(os.environ):
        if variable.startswith("CONNECTOR_") and variable not in known:
            close = difflib.get_close_matches(variable, sorted(known), n=1, cutoff=0.8)
            if close:
                log.warning("%s is not a setting: did you mean %s? (ignored)", variable, close[0])


def _relative_to_config(settings: Settings, file_values: dict[str, object], given: set[str]) -> Settings:
    """Relative paths written in connector.toml are relative to that file, not to where the command runs."""
    folder = config_path().resolve().parent
    changes: dict[str, object] = {}
    from_file = {name for name in file_values if name not in given and f"CONNECTOR_{name.upper()}" not in os.environ}
    if "mappings_dir" in from_file and not settings.mappings_dir.is_absolute():
        changes["mappings_dir"] = folder / settings.mappings_dir
    if "state_url" in from_file and settings.state_url.startswith("sqlite:///") and \
            not settings.state_url.startswith("sqlite:////"):
        changes["state_url"] = f"sqlite:///{folder / settings.state_url.removeprefix('sqlite:///')}"
    return settings.model_copy(update=changes) if changes else settings


def _setting_problem(err: dict) -> str:
    name = str(err["loc"][0]) if err.get("loc") else "?"
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    given = err.get("input")
    shown = "" if name in SECRET_FIELDS or name == "client_id" or isinstance(given, (dict, list)) else f" (got {given!r})"
    return f"CONNECTOR_{name.upper()}: {message}{shown}"
