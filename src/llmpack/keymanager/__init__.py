"""The key manager: users get API keys for the models they may use, signed in with OIDC.

`create_app(build(settings, client))` is the whole service; `serve` runs it (`llmpack key-manager`).
Layers, lowest first: keys (pure decisions about keys and records), kinds and catalog (models and who may
use them), oidc and auth (who is calling), holdings and storage (the key objects on the cluster), sweep
(expiry, grace period, repair), api and app (HTTP).
"""

from llmpack.keymanager.app import create_app
from llmpack.keymanager.service import Service, build
from llmpack.keymanager.settings import Settings, load_settings

__all__ = ["Service", "Settings", "build", "create_app", "load_settings"]
