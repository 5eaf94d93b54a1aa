"""`livegate certify`: the conformance matrix for any broker adapter (docs/certify.md).

What an adapter author needs to write a factory is here.
"""

from livegate.drills.certify.harness import NotApplicable
from livegate.drills.certify.target import CertifyEnv, Target, TestMarket

__all__ = ["CertifyEnv", "NotApplicable", "Target", "TestMarket"]
