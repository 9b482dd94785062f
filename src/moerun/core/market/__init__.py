"""What can be bought and under which rules: GPU cloud prices, managed API providers,
offers, cost arithmetic and the data-governance policy.

Imports: core.load (the SLO value).
"""
