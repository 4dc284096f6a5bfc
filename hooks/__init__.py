"""Webhooks: a project's changes signed and POSTed to subscribers, from a transactional outbox (docs/webhooks.md)."""
