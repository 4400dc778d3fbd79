"""The platform's store: one engine and session factory per database (db.py) and the platform's
tables (tables.py). Agents' contexts live in agents/context/, on the same database."""
