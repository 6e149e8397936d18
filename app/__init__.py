"""peft-planner's service: the HTTP API, persistence, jobs and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("peft-planner")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "unknown"
