"""What a run leaves on disk and how it is read back safely (today: training checkpoints).
Imports nothing of training or inference, so every layer above can build on it."""
