"""Replay of broker event captures, stress and fault drills."""
