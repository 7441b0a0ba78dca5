"""Renderers for runs, comparisons and the registry (plain tables now; widgets in step 4)."""
