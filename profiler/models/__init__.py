"""Models to profile: the built-in catalog, building from a spec (meta device), small torch-code models."""
