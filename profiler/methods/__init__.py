"""Adapter methods, one module each, and their registry (see `registry` for the attach API)."""

from profiler.methods.base import Attachment, Method, Site, freeze
from profiler.methods.registry import attach, get_method, list_methods

__all__ = ["Attachment", "Method", "Site", "attach", "freeze", "get_method", "list_methods"]
