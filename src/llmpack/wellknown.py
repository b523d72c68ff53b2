"""Strings that other programs and our own parts agree on: labels, annotations and Secret keys.

It imports nothing, because the model-downloader (which writes the progress annotation) must start fast.
"""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "llmpack"
# The model a child belongs to: the operator files every watched child under it.
MODEL_LABEL = "llm.nebari.dev/model"
# On a model's key Secret and key metadata: a key manager finds them by it.
MODEL_NAME_LABEL = "llm.nebari.dev/model-name"
# On vLLM pods: a digest of what decides which weights they hold.
IDENTITY_ANNOTATION = "llm.nebari.dev/model-identity"
# On the download Lease: the downloader holding it writes its progress here, the operator mirrors it in status.
PROGRESS_ANNOTATION = "llm.nebari.dev/download-progress"
# The key of spec.model.authSecretName that holds the Hugging Face token.
HF_TOKEN_KEY = "HF_TOKEN"
# On the download Lease: what the sizing step learned from the Hub (repo, revision, commit, bytes) or why it could
# not (error), written before the download starts; the operator sizes the PVC and pins the commit from it.
SIZE_ANNOTATION = "llm.nebari.dev/model-size"
