"""The stages of one run, one module each: setup → (warmup, measure) → settle → teardown.

run.py calls them in order; each takes plain inputs and returns plain outputs.
"""
