"""Measuring what candidates cost: stages (prepare -> measure each unit -> assemble), FLOPs, timing, memory."""
