"""Backups of instances: their models and their calls."""
