"""The imperative shell: watch LLMModels and their children, gather the facts, apply what render() and the
routing plan want, report what assess/ makes of it. Every decision is made by pure code elsewhere."""
