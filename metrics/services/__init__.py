"""Every write of the metrics layer, one module per subject: `pause` (the pause trigger, and pausing a category
with its incident and its stewards told) and `alerts` (alert rules: evaluation, firing, and edits)."""
