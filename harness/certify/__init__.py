"""`bctest certify PACK`: the certification program for any chain pack.

  claims.py     the vendor's claims (claims.yaml)
  program.py    the program's inputs (pack, claims, profile, measured capacity) and profiles
  rounds/       one file per round (pressure-4, spike-4, bft-threshold, security …): whether it
                applies to this pack and the suite it runs
  capacity.py   the capacity search: ramp, bisect, confirm; judged from the steps' results
  judge.py      results.json's `certify` block from certify.json and the cases' results (pure)
  execute.py    runs it all as one campaign folder and signs it

Importing this package loads nothing that talks to an engine; execute.py does.
"""
