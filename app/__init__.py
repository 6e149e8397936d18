"""peft-planner's service: the HTTP API, persistence, jobs and the command line."""

__version__ = "0.1.0"
