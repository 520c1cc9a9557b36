"""Tools around training: the layout and memory plan (``--dry-run``), evaluation, plots."""
