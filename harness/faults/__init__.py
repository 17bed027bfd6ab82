"""Fault injection: the schedule (what, whom, when) and the nemesis that applies it."""
