"""Data-signal probes: do these features predict this target at all?

Before blaming the model (or tuning a KL weight for a week), compare what the features say
about the target against the same analysis on shuffled labels. Entry point:
:func:`termwise.probes.run.probe_table`; the CLI is ``termwise probe``.
"""
