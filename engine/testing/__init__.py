"""Testing support shipped with the engine: an in-process fake OCI runtime and fake host.

They exist for unit tests, fault injection and measuring the engine's own overhead; a test of
real container behaviour uses runc.
"""

from engine.testing.fake_host import FakeHost
from engine.testing.fake_runtime import FakeRuntime
from engine.testing.fault import Fault, FaultPlan

__all__ = ["FakeHost", "FakeRuntime", "Fault", "FaultPlan"]
