"""The PostgreSQL store, for many nodes on one database: store.py (PostgresStore); writes.py,
control.py, upkeep.py, outbox.py, schedules.py and triggers.py (its transactions); reads.py;
rows.py (columns ⇄ records); schema.py (migrations); queries.sql and migrations/."""
