"""Treatment protocols: zones, machine settings, per-zone profiles and safety envelopes.

Pure domain code: imports nothing else from this project and does no I/O but reading
profile files.
"""

from protocols.envelope import HARD_LIMITS, Range, SafetyEnvelope, Violation
from protocols.errors import SmpError
from protocols.library import Library, LibraryEntry, load_library
from protocols.needles import NeedleSpec
from protocols.profiles import Profile, ProfileRefused, Resolution, resolve
from protocols.quantities import DEPTH, QUANTITIES, RATE, VOLTAGE, Quantity
from protocols.settings import MachineSettings, WireSettings
from protocols.skin import SkinCondition
from protocols.stages import STAGE_PLANS, Dilution, Stage, StagePlan
from protocols.zones import Zone

__all__ = [
    "DEPTH", "HARD_LIMITS", "QUANTITIES", "RATE", "STAGE_PLANS", "VOLTAGE", "Dilution",
    "Library", "LibraryEntry", "MachineSettings", "NeedleSpec", "Profile", "ProfileRefused",
    "Quantity", "Range", "Resolution", "SafetyEnvelope", "SkinCondition", "SmpError", "Stage",
    "StagePlan", "Violation", "WireSettings", "Zone", "load_library", "resolve",
]
