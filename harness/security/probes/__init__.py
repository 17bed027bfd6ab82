"""The security probes, one module each (see harness/security/__init__.py)."""
