"""TRUSTED and DELIVERY as Apache Iceberg tables in the Glue catalog, written with pyiceberg.

Not wired into the stages yet (docs/architecture.md, "Iceberg tables: the decision so far"):
`catalog` opens the Glue catalog and names the tables, `commit` replaces executions'
contributions in one snapshot each commit, `maintenance` expires snapshots and reads old ones.
This package's modules import pyiceberg; this file does not, and no handler imports them.
"""
