"""Bridges to the hosts livegate runs under (akquant); each imports its host lazily."""
