"""What the operator creates for the key manager, when one is installed: a model's key objects that outlive
the model, and a Role that lets the key manager touch those two objects and nothing else.

- Key objects (`<m>-api-keys`, `<m>-api-key-metadata`) without an owner reference to the model: deleting the
  model (a GitOps prune, a rename back) leaves its users' keys; the key manager deletes them once the model
  has been gone for its grace period. The key manager makes the Secret a dependent of the ConfigMap, so
  deleting the ConfigMap takes the Secret along.
- Role `<m>-key-manager`, scoped by resourceNames: get/update the Secret, get/update/delete the ConfigMap.
  Never list or watch Secrets. It is owned by the metadata ConfigMap, so it lives exactly as long as the
  objects it grants access to (and the key manager can still retire a gone model's keys).
  RBAC lets a subject grant only what it holds: the operator must itself hold these verbs on Secrets and
  ConfigMaps (docs/key-manager.md weighs that against `escalate`).
"""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel, names
from llmpack.config import Config
from llmpack.render.auth import api_key_objects, key_metadata, key_object_metadata, key_secret

SECRET_VERBS = ("get", "update")
CONFIG_MAP_VERBS = ("get", "update", "delete")


def retains_keys(config: Config) -> bool:
    """With a key manager, key objects outlive the model (it retires them); else the model owns them."""
    return bool(config.key_manager_service_account)


def retained_key_objects(model: LLMModel) -> list[dict[str, Any]]:
    """The Secret and ConfigMap the key manager fills, with no owner reference: they outlive the model."""
    return [key_secret(model, owned=False), key_metadata(model, owned=False)]


def owned_by_metadata(model: LLMModel, metadata_uid: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "ConfigMap", "name": names.key_metadata(model.name), "uid": metadata_uid}]


def key_manager_access(model: LLMModel, service_account: tuple[str, str], metadata_uid: str) -> list[dict[str, Any]]:
    """Role and RoleBinding for the key manager's ServiceAccount (namespace, name), owned by the metadata
    ConfigMap whose uid is given."""
    name = names.key_manager_role(model.name)
    meta = {**key_object_metadata(model, name, owned=False), "ownerReferences": owned_by_metadata(model, metadata_uid)}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [names.api_keys(model.name)],
             "verbs": list(SECRET_VERBS)},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [names.key_metadata(model.name)],
             "verbs": list(CONFIG_MAP_VERBS)},
        ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "namespace": service_account[0], "name": service_account[1]}]},
    ]


def key_objects(model: LLMModel, config: Config) -> list[dict[str, Any]]:
    """The key objects the operator creates: retained when a key manager is installed (it retires them after
    its grace period), else owned by the model (nothing else would ever delete them)."""
    return retained_key_objects(model) if retains_keys(config) else api_key_objects(model)


def access_for(model: LLMModel, config: Config, metadata_uid: str | None) -> list[dict[str, Any]]:
    """The key manager's Role and RoleBinding once the metadata ConfigMap exists (its uid owns them); nothing
    without a key manager."""
    if not retains_keys(config) or not metadata_uid:
        return []
    namespace, _, name = config.key_manager_service_account.partition("/")
    return key_manager_access(model, (namespace, name), metadata_uid)
