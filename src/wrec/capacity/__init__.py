"""What a state sequence can reconstruct: memory capacity, IPC, thresholds and theory."""

from wrec.capacity import theory
from wrec.capacity.basis import orthonormal
from wrec.capacity.core import Capacities, Decomposition, NestedDecomposition, capacities, decompose, nested_decompose
from wrec.capacity.ipc import IPC, CapacityWarning, ipc
from wrec.capacity.mc import MemoryCapacity, memory_capacity
from wrec.capacity.profile import CapacityProfile, profile
from wrec.capacity.readout import ReadoutProfile, capacity_by_readout
from wrec.capacity.targets import TargetSet, delay_sets
from wrec.capacity.thresholds import ChiSquare, NoThreshold, Surrogate

__all__ = [
    "IPC",
    "Capacities",
    "CapacityProfile",
    "CapacityWarning",
    "ChiSquare",
    "Decomposition",
    "MemoryCapacity",
    "NestedDecomposition",
    "NoThreshold",
    "ReadoutProfile",
    "Surrogate",
    "TargetSet",
    "capacities",
    "capacity_by_readout",
    "decompose",
    "delay_sets",
    "ipc",
    "memory_capacity",
    "nested_decompose",
    "orthonormal",
    "profile",
    "theory",
]
