"""Adapter methods, one module each, their registry, and applying and exporting a plan."""

from profiler.methods.base import Attachment, Method, freeze
from profiler.methods.registry import attach, get_method, list_methods

__all__ = ["Attachment", "Method", "attach", "freeze", "get_method", "list_methods"]
