"""Pure judgements over what the cluster holds, where render/ says what it should hold: a model's phase and
conditions (status.py), whether an object already holds what we would apply (diff.py), changes we refuse
to make (guards.py), a download's progress (progress.py) and a routing plan's outcome (routing.py).
No I/O: the operator gathers the objects and the time, and passes them in."""
