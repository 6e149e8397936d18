"""Errors raised by the profiler."""


class ProfileError(ValueError):
    """A model, config, shape or option that cannot be profiled; the message is one clear line."""


class Cancelled(Exception):
    """Profiling was cancelled by the caller's `should_cancel`."""
