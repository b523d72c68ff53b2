"""API keys as they are stored, and the pure decisions about them: new keys and client ids, metadata
records, which keys have expired, and which Secret entries a crashed create left behind.

Storage (where Envoy Gateway reads it): Secret `<m>-api-keys` holds `data[clientId] = key` (Envoy compares
plain values); ConfigMap `<m>-api-key-metadata` holds `data[clientId] = JSON record` (the Serving Pack's
fields, plus `expiresAt`). A create writes the Secret first, with the client id in the Secret's
`llm.nebari.dev/pending-keys` annotation, then the record: a Secret entry that is pending and has no record
after ORPHAN_AFTER was never handed to anyone (the create died between the two writes) and is removed.
Entries without a marker and without a record were written by hand: they are left alone.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
from collections.abc import Container, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

API_KEY_PREFIX = "sk-"
KEY_BYTES = 32  # from `secrets`: 256 bits, url-safe base64 (43 characters after the prefix)
DESCRIPTION_MAX = 256
PENDING_ANNOTATION = "llm.nebari.dev/pending-keys"
GONE_ANNOTATION = "llm.nebari.dev/model-gone-since"
# A Secret data key ([-._a-zA-Z0-9]+, at most 253) that is also safe in a URL path: no "..", no "/".
CLIENT_ID_MAX = 253
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-](?:[-_A-Za-z0-9]|\.(?!\.))*$")
_USER_UNSAFE = re.compile(r"[^-A-Za-z0-9.]+")
USER_PART_MAX = 48


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def valid_client_id(text: str) -> bool:
    return 0 < len(text) <= CLIENT_ID_MAX and bool(_CLIENT_ID.match(text))


def user_part(username: str) -> str:
    """The username as it may appear in a client id: readable, never the owner's proof (the record is)."""
    part = re.sub(r"\.{2,}", ".", _USER_UNSAFE.sub("-", username)).strip(".-")[:USER_PART_MAX].strip(".-")
    return part or "user"


def new_client_id(model: str, username: str, taken: Container[str]) -> str:
    """`<model>_<user>_<8 hex>`. Model names never contain `_`, so ids of different models of a namespace
    cannot collide, and `taken` (the Secret's ids and every id the namespace's records know) rules out the rest:
    Envoy Gateway pools every key Secret of a namespace and lets the first of duplicate ids win."""
    while True:
        candidate = f"{model}_{user_part(username)}_{secrets.token_hex(4)}"
        if candidate not in taken:
            return candidate


class KeyRecord(BaseModel):
    """One key's metadata, as the Serving Pack's key manager stored and served it, plus expiresAt."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    client_id: str = Field(alias="clientId")
    creator: str
    description: str = ""
    created_at: datetime.datetime = Field(alias="createdAt")
    model_name: str = Field(alias="modelName")
    namespace: str
    expires_at: datetime.datetime | None = Field(None, alias="expiresAt")

    def wire(self) -> dict[str, Any]:
        return {"clientId": self.client_id, "creator": self.creator, "description": self.description,
                "createdAt": stamp(self.created_at), "modelName": self.model_name, "namespace": self.namespace,
                "expiresAt": stamp(self.expires_at) if self.expires_at else None}

    def to_json(self) -> str:
        return json.dumps(self.wire(), separators=(",", ":"))

    def expired(self, moment: datetime.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= moment


def parse_records(data: Mapping[str, str] | None) -> dict[str, KeyRecord]:
    """The records of a metadata ConfigMap, by client id; entries that are not records are skipped."""
    records = {}
    for client_id, text in (data or {}).items():
        try:
            record = KeyRecord.model_validate_json(text)
        except (ValidationError, ValueError):
            continue
        if record.client_id == client_id:
            records[client_id] = record
    return records


def pending_of(annotations: Mapping[str, str] | None) -> dict[str, datetime.datetime]:
    try:
        raw = json.loads((annotations or {}).get(PENDING_ANNOTATION) or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: moment for k, v in raw.items() if isinstance(v, str) and (moment := parse_stamp(v)) is not None}


def pending_annotation(pending: Mapping[str, datetime.datetime]) -> str | None:
    return json.dumps({k: stamp(v) for k, v in sorted(pending.items())}, separators=(",", ":")) if pending else None


def still_pending(pending: Mapping[str, datetime.datetime], recorded: Container[str],
                  present: Container[str]) -> dict[str, datetime.datetime]:
    """Markers worth keeping: their key is in the Secret and has no record yet."""
    return {k: v for k, v in pending.items() if k in present and k not in recorded}


def orphans(pending: Mapping[str, datetime.datetime], recorded: Container[str], present: Container[str],
            moment: datetime.datetime, after: float) -> set[str]:
    """Pending keys that never got their record: the create that wrote them died before answering."""
    cutoff = moment - datetime.timedelta(seconds=after)
    return {k for k, since in pending.items() if k in present and k not in recorded and since <= cutoff}


def expired(records: Iterable[KeyRecord], moment: datetime.datetime) -> list[KeyRecord]:
    return [r for r in records if r.expired(moment)]
