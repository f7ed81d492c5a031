"""The SQLite store: store.py (SqliteStore); writes.py, control.py and upkeep.py (its
transactions); reads.py; rows.py (columns ⇄ records), queries.sql (its statements) and
migrations/."""
