"""What the CLI and Dagster both call: inspect now; backup, restore, verify as they land."""
