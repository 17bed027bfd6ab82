"""Checkers: pure functions of a run's figures or History that answer pass, fail or unknown."""
