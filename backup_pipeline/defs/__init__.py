"""Dagster definitions (a module per concern): resources, assets, checks, jobs."""
