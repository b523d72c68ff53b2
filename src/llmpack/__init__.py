"""llmpack: a Kubernetes operator that serves large language models with vLLM."""

__version__ = "0.1.0"
