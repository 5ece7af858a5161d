"""The simulated machine: firmware core, physics, clocks, link faults, pty and TCP servers.

It speaks only the wire (firmware_bridge's schema and codec); console/sim_transport.py makes
the in-process machine a `sim://` transport.
"""
