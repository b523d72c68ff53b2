"""Ready-to-run snippets for a new key: `curl` and the OpenAI Python client, with the model's endpoint and id.

Pure text: every value is quoted for its language (shlex for the shell, JSON inside it, repr for Python),
so whatever a model id holds, the snippet runs and sends exactly that id.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from llmpack.keymanager.catalog import ModelEntry

PLACEHOLDER = "https://llm.YOUR-BASE-DOMAIN"


@dataclass(frozen=True)
class Endpoint:
    url: str  # the OpenAI base URL's host part, without /v1
    source: str  # where it came from, in words for the page


def endpoint_for(model: ModelEntry, external_url: str) -> Endpoint:
    """The model's external endpoint from its status; else where the chart's base domain puts every model."""
    if url := model.endpoints.get("external"):
        return Endpoint(url.rstrip("/"), "the model's external endpoint")
    if external_url:
        return Endpoint(external_url.rstrip("/"), "the external endpoint every model gets once its route is ready")
    return Endpoint(PLACEHOLDER, "a placeholder: the key manager does not know the base domain (routing.baseDomain)")


def curl(base: str, model_id: str, api_key: str) -> str:
    body = json.dumps({"model": model_id, "messages": [{"role": "user", "content": "Hello!"}]})
    return (f"curl {shlex.quote(base + '/v1/chat/completions')} \\\n"
            f"  -H {shlex.quote('Authorization: Bearer ' + api_key)} \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(body)}")


def openai_python(base: str, model_id: str, api_key: str) -> str:
    return ("from openai import OpenAI\n\n"
            f"client = OpenAI(base_url={base + '/v1'!r}, api_key={api_key!r})\n"
            "reply = client.chat.completions.create(\n"
            f"    model={model_id!r},\n"
            "    messages=[{\"role\": \"user\", \"content\": \"Hello!\"}],\n"
            ")\n"
            "print(reply.choices[0].message.content)")
