"""The store: platform tables and versioned agent contexts (SQLAlchemy 2)."""
