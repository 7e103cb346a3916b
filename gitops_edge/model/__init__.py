"""Frozen dataclasses: desired state, observed state, plan, steps, journal, status.

Everything here is immutable and hashable so the pure core can compare,
hash and order it without surprises.
"""
