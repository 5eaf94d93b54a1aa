"""Intraday and end-of-day reconciliation, diff reports, conflict policy, interventions."""

from livegate.recon.policy import ConflictPolicy, Rule
from livegate.recon.reconciler import Reconciler, ReconConfig, ReconRun

__all__ = ["ConflictPolicy", "ReconConfig", "ReconRun", "Reconciler", "Rule"]
