"""The key manager's settings: the operator's OIDC settings (`auth.oidc.*`, `watchNamespaces`) plus its own
(`keyManager.*`), from a values file with the Helm chart's keys and LLMPACK_KEY_MANAGER_* variables.

Precedence, lowest first, as for the operator (llmpack.config): built-in defaults, the values file, the
environment. Durations are Go-style (`30s`, `5m`, `24h`) or plain seconds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmpack.config import ConfigError, dig, first_error, load_config, read_values

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
SESSION_KEY_MIN = 32


def parse_duration(text: str | float | int) -> float:
    """Seconds in `30s`, `1h30m`, `250ms` or a plain number of seconds; ValueError for anything else."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        return float(value)
    if not value or _DURATION_PART.sub("", value):
        raise ValueError(f"{text!r} is not a duration: use e.g. 30s, 5m, 24h")
    return sum(float(n) * _UNIT[unit] for n, unit in _DURATION_PART.findall(value))


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    oidc_issuer: str = Field(min_length=1)
    oidc_jwks_uri: str = Field(min_length=1)
    oidc_audience: str = ""
    groups_claim: str = Field("groups", min_length=1)
    username_claim: str = Field("preferred_username", min_length=1)
    # Tolerated clock skew for exp/nbf/iat: small, the tokens are short-lived.
    leeway: float = Field(30.0, ge=0, le=300)
    # A token with an unknown `kid` refetches the JWKS, but not more often than this (forged kids are free).
    jwks_refetch_cooldown: float = Field(10.0, ge=0)
    jwks_refresh: float = Field(3600.0, gt=0)
    admin_groups: tuple[str, ...] = ()
    max_keys_per_user: int = Field(25, ge=1, le=1000)
    default_expiry_days: float = Field(90.0, ge=0, description="0: keys without expiresInDays never expire")
    max_expiry_days: float = Field(365.0, ge=0, description="0: no upper bound")
    sweep_interval: float = Field(30.0, gt=0, le=60, description="expired keys are removed within this")
    grace_period: float = Field(86400.0, ge=0, description="keys outlive a deleted model this long")
    repair_interval: float = Field(600.0, gt=0, description="how often every key Secret is checked")
    # A key in a Secret whose metadata is missing this long after it was written is a crashed create.
    orphan_after: float = Field(120.0, gt=0)
    namespaces: tuple[str, ...] = Field((), description="empty: every namespace")
    # Where clients reach every model from outside (https://llm.<routing.baseDomain>): the snippets' URL for a
    # model whose status has no external endpoint yet. Empty: a placeholder.
    external_url: str = ""
    # The web page's sign-in (login.py): a confidential OIDC client, code flow with PKCE. All three or none.
    client_id: str = ""
    client_secret: str = Field("", repr=False)
    session_keys: tuple[str, ...] = Field((), repr=False, description="the first seals, every one opens")
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    public_url: str = Field("", description="the page's URL; empty: from each request's Host and scheme")
    secure_cookies: bool = True
    session_lifetime: float = Field(8 * 3600.0, ge=60, le=30 * 86400)
    # "<namespace>/<name>" of the ConfigMap every replica records logouts in; empty: this process only.
    sessions_config_map: str = Field("", pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")

    @model_validator(mode="after")
    def _login_whole(self) -> Settings:
        given = {"keyManager.login.clientId": self.client_id, "LLMPACK_KEY_MANAGER_CLIENT_SECRET": self.client_secret,
                 "LLMPACK_KEY_MANAGER_SESSION_KEY": self.session_keys}
        missing = [name for name, value in given.items() if not value]
        if missing and len(missing) < len(given):
            raise ValueError(f"the web page's sign-in needs {', '.join(missing)} too (or none of the three)")
        short = [i for i, key in enumerate(self.session_keys, 1) if len(key) < SESSION_KEY_MIN]
        if short:
            raise ValueError(f"session key {short[0]} is shorter than {SESSION_KEY_MIN} characters: use e.g. "
                             "`openssl rand -base64 32`")
        if self.public_url and not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", self.public_url):
            raise ValueError(f"keyManager.login.publicUrl {self.public_url!r} must be an http(s) URL such as "
                             "https://llm-keys.example.org")
        return self

    @property
    def login_enabled(self) -> bool:
        return bool(self.client_id)


# (values-file path, environment variable, Settings field)
OWN_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("keyManager.adminGroups", "LLMPACK_KEY_MANAGER_ADMIN_GROUPS", "admin_groups"),
    ("keyManager.maxKeysPerUser", "LLMPACK_KEY_MANAGER_MAX_KEYS_PER_USER", "max_keys_per_user"),
    ("keyManager.keys.defaultExpiryDays", "LLMPACK_KEY_MANAGER_DEFAULT_EXPIRY_DAYS", "default_expiry_days"),
    ("keyManager.keys.maxExpiryDays", "LLMPACK_KEY_MANAGER_MAX_EXPIRY_DAYS", "max_expiry_days"),
    ("keyManager.sweepInterval", "LLMPACK_KEY_MANAGER_SWEEP_INTERVAL", "sweep_interval"),
    ("keyManager.gracePeriod", "LLMPACK_KEY_MANAGER_GRACE_PERIOD", "grace_period"),
    ("keyManager.repairInterval", "LLMPACK_KEY_MANAGER_REPAIR_INTERVAL", "repair_interval"),
    ("keyManager.jwksRefetchCooldown", "LLMPACK_KEY_MANAGER_JWKS_REFETCH_COOLDOWN", "jwks_refetch_cooldown"),
    ("keyManager.leeway", "LLMPACK_KEY_MANAGER_LEEWAY", "leeway"),
    ("keyManager.login.clientId", "LLMPACK_KEY_MANAGER_CLIENT_ID", "client_id"),
    # Secrets come from the environment only (the chart: a Secret's keys), never from a values file.
    ("", "LLMPACK_KEY_MANAGER_CLIENT_SECRET", "client_secret"),
    ("", "LLMPACK_KEY_MANAGER_SESSION_KEY", "session_keys"),
    ("keyManager.login.scopes", "LLMPACK_KEY_MANAGER_SCOPES", "scopes"),
    ("keyManager.login.publicUrl", "LLMPACK_KEY_MANAGER_PUBLIC_URL", "public_url"),
    ("keyManager.login.secureCookies", "LLMPACK_KEY_MANAGER_SECURE_COOKIES", "secure_cookies"),
    ("keyManager.login.sessionLifetime", "LLMPACK_KEY_MANAGER_SESSION_LIFETIME", "session_lifetime"),
    ("", "LLMPACK_KEY_MANAGER_SESSIONS_CONFIGMAP", "sessions_config_map"),
)
_DURATIONS = {"sweep_interval", "grace_period", "repair_interval", "jwks_refetch_cooldown", "leeway",
              "session_lifetime"}
_LISTS = {"admin_groups", "scopes", "session_keys"}


def _coerce(field: str, value: Any, origin: str) -> Any:
    if field in _LISTS:
        if isinstance(value, str):  # comma-separated; scopes and keys also by spaces (group names may hold them)
            return tuple(g.strip() for g in re.split(r"," if field == "admin_groups" else r"[,\s]+", value)
                         if g.strip())
        return tuple(value)
    if field in _DURATIONS:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
    return value


def load_settings(values_file: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    config = load_config(values_file, env)  # auth.oidc.* and watchNamespaces, read exactly as the operator does
    if not config.oidc_issuer:
        raise ConfigError("auth.oidc.issuer (LLMPACK_OIDC_ISSUER) is required: the key manager signs users in "
                          "with it")
    values = read_values(values_file)
    chosen: dict[str, Any] = {
        "oidc_issuer": config.oidc_issuer, "oidc_jwks_uri": config.jwks_uri, "oidc_audience": config.oidc_audience,
        "groups_claim": config.oidc_groups_claim, "username_claim": config.oidc_username_claim,
        "namespaces": config.watch_namespaces,
        "external_url": f"https://llm.{config.base_domain}" if config.base_domain else "",
    }
    origin: dict[str, str] = {}
    for dotted, var, field in OWN_SETTINGS:
        if dotted and (found := dig(values, dotted)) is not None:
            origin[field] = f"{values_file}: {dotted}"
            chosen[field] = _coerce(field, found, origin[field])
        if var in env:
            origin[field] = f"environment variable {var}"
            chosen[field] = _coerce(field, env[var], origin[field])
    try:
        return Settings(**chosen)
    except ValidationError as exc:
        error = exc.errors()[0]
        if not error["loc"]:  # a rule over several settings (the sign-in's): its message names them
            raise ConfigError(str(error["msg"]).removeprefix("Value error, ")) from None
        raise first_error(exc, origin) from None
