"""Scorecards: a static site published from signed certification folders (docs/scorecard.md).

collect  finds the certify folders under the given paths and checks each one's signature
listing  turns one checked folder into its listing.jsonl line (harness/schemas/listing.schema.json)
site     copies the folders into the site and writes index, per-chain and compare pages
"""
