"""Webhooks: subscriptions, signing, target safety and the delivery worker."""
