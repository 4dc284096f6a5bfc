"""The one seam for PostgreSQL accelerations: every place where the product does something faster than the ORM
would (prepared statements, correlated subqueries written out in SQL, the kept issue counts, COPY and set-based
SQL for bulk writes, advisory locks and per-transaction timeouts) lives in this package, and nowhere else does
product code compile querysets by hand or open a database cursor.

Each mechanism has a design note in docs/performance.md: what it saves (measured), what it costs, and when it
could be deleted. Raw SQL is composed with ``psycopg.sql`` (identifiers quoted) and arrays are passed as lists.
"""
