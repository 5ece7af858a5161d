"""`smp conformance`'s engine: the device clauses of docs/protocol.md run against any device
that claims the protocol, through the codec and a byte transport only (not the link
supervisor), so that it checks the device and not our host.

    report = run(transport, "/dev/ttyUSB0", allow_arm=True, operator=None)
"""

from firmware_bridge.conformance.clauses import CLAUSES, ORDER, Clause
from firmware_bridge.conformance.context import Fail, Operator, Skip
from firmware_bridge.conformance.runner import NotAMachine, Report, Result, run, select

__all__ = ["CLAUSES", "ORDER", "Clause", "Fail", "NotAMachine", "Operator", "Report", "Result",
           "Skip", "run", "select"]
