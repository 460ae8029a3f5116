"""The stages as the Lambdas run them: read pointers, move bytes through S3, call stage logic.

Each stage function takes the state machine's small state and returns the section it adds to
it: pointers (bucket + key) and counts, never rows. One module per stage (`validate`, `trusted`,
`delivery`), with what they share: `common`, `contracts` (which contract a file is read with),
`quarantine` (files refused whole) and `summary` (a day's summary kept by compare-and-swap).
"""
