"""Record decoder tests; fixture loading lives in decoder_fixtures.py (a unique module name,
because tests/ directories are not packages). Missing fixtures fail the session (tests/conftest.py)."""
