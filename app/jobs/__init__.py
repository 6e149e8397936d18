"""Profiling jobs: the runner interface, the local worker runner, and job execution."""
