"""Shared machinery below every resource: transport, documents, session, retries, polling, bulk."""
