"""Training: the loop (loop.py), what runs after each step (pieces.py), resuming a run folder
(resume.py), learning-rate schedules, held-out validation, processes (dist.py) and reports."""
