"""Automation: new connections, the two-hour refresh, syncs in flight, connection health."""
