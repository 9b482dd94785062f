"""The planner: demand, the self-hosted search, the analytic capacity screen, simulation
of finalists, options ranked by cost, exclusions and the notes shown with each option.

Imports: every other core part except core.traffic.
"""
