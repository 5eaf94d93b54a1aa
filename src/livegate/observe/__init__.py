"""Monitoring: order traces from the journal (metrics and alerting build here)."""
