"""Snapshots of Cloud VPS instances: the model (`_domain`) and the calls (`_client`)."""
