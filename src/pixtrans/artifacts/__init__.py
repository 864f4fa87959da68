"""What a run leaves on disk and how it is read back safely: the run folder layout (runs.py),
training checkpoints (checkpoints.py) and exports (exports.py).
Imports nothing of training or inference, so every layer above can build on it."""
