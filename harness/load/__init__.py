"""Open-loop load: sender processes fire pre-built requests on a fixed schedule."""
