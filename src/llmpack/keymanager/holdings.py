"""What the key metadata ConfigMaps hold, kept from a watch by label (never Secrets: those are read by name).

Writes by this service go through `put` at once, so a user's next request sees their new key without
waiting for the watch; an older version arriving later from the watch is ignored.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from lightkube.resources.core_v1 import ConfigMap

from llmpack.api import names
from llmpack.keymanager.catalog import ModelRef
from llmpack.keymanager.keys import GONE_ANNOTATION, KeyRecord, parse_records, parse_stamp
from llmpack.wellknown import MODEL_NAME_LABEL


@dataclass(frozen=True)
class Holding:
    """One model's key metadata ConfigMap, as last seen."""

    config_map: ConfigMap
    records: dict[str, KeyRecord]

    @property
    def ref(self) -> ModelRef:
        meta = self.config_map.metadata
        assert meta is not None
        assert meta.namespace is not None
        return meta.namespace, (meta.labels or {})[MODEL_NAME_LABEL]

    @property
    def uid(self) -> str:
        return _uid(self.config_map)

    @property
    def gone_since(self) -> datetime.datetime | None:
        text = (self.config_map.metadata.annotations or {}).get(GONE_ANNOTATION)  # type: ignore[union-attr]
        return parse_stamp(text) if text else None


def model_of(config_map: ConfigMap) -> ModelRef | None:
    """The model whose key metadata this is, or None for another ConfigMap that carries the label."""
    meta = config_map.metadata
    if meta is None or meta.namespace is None or meta.name is None:
        return None
    model = (meta.labels or {}).get(MODEL_NAME_LABEL)
    return (meta.namespace, model) if model and meta.name == names.key_metadata(model) else None


def _uid(config_map: ConfigMap) -> str:
    return str(config_map.metadata.uid) if config_map.metadata else ""


def _version(config_map: ConfigMap) -> int:
    try:
        return int(config_map.metadata.resourceVersion or 0)  # type: ignore[union-attr]
    except ValueError:
        return 0


@dataclass
class Holdings:
    held: dict[ModelRef, Holding] = field(default_factory=dict)

    def put(self, config_map: ConfigMap) -> Holding | None:
        ref = model_of(config_map)
        if ref is None:
            return None
        known = self.held.get(ref)
        if known is not None and known.uid == _uid(config_map) and _version(known.config_map) > _version(config_map):
            return known  # the watch is behind our own write
        holding = Holding(config_map, parse_records(config_map.data))
        self.held[ref] = holding
        return holding

    def drop(self, config_map: ConfigMap) -> None:
        ref = model_of(config_map)
        if ref is not None and (known := self.held.get(ref)) is not None and known.uid == _uid(config_map):
            del self.held[ref]

    def reset(self, config_maps: Iterable[ConfigMap], namespace: str | None = None) -> None:
        self.held = {ref: h for ref, h in self.held.items() if namespace is not None and ref[0] != namespace}
        for config_map in config_maps:
            self.put(config_map)

    def get(self, ref: ModelRef) -> Holding | None:
        return self.held.get(ref)

    def ids_in(self, namespace: str) -> set[str]:
        return {cid for (ns, _), h in self.held.items() if ns == namespace for cid in h.records}

    def records(self) -> list[KeyRecord]:
        return sorted((r for h in self.held.values() for r in h.records.values()),
                      key=lambda r: (r.namespace, r.model_name, r.created_at, r.client_id))

    def records_of(self, username: str) -> list[KeyRecord]:
        return [r for r in self.records() if r.creator == username]

    def count_of(self, username: str) -> int:
        return sum(1 for h in self.held.values() for r in h.records.values() if r.creator == username)
