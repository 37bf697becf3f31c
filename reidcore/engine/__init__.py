"""Training engine: trainer, checkpoints, learning-rate schedules, clean stop, embedding."""
