"""The imperative shell: watch LLMModels and their children, apply what render() wants, report status."""
