"""Pre-trade rules, price guards, trading-session calendars, throttles."""

from livegate.risk.engine import RiskEngine
from livegate.risk.limits import RiskFile, RiskLimits, load_risk_file
from livegate.risk.reference import ReferenceData, daily_limits, load_instruments
from livegate.risk.sessions import ExtraSession, SessionGuard

__all__ = [
    "ExtraSession",
    "ReferenceData",
    "RiskEngine",
    "RiskFile",
    "RiskLimits",
    "SessionGuard",
    "daily_limits",
    "load_instruments",
    "load_risk_file",
]
