"""Training: the loop, checkpoints, distributed helpers, logging and progress reports."""
