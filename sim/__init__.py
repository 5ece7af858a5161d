"""The simulated machine: firmware core, physics, clocks and transports.

Importing `sim` registers the `sim://` URL scheme with firmware_bridge's transports, so that
`Machine.connect("sim://")` runs an in-process simulated machine.
"""

from sim import inprocess as _inprocess  # noqa: F401  (registers sim://)
