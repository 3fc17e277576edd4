"""Alembic migrations of the whole schema.

``HEAD`` names the newest revision so that start-up can see the schema is current with one
query, without importing Alembic (~0.5 s); a test keeps it equal to Alembic's own head.
"""

HEAD = "0001"
