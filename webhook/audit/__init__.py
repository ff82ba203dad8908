"""Adoption audit: what the current policies would change and deny on pods that already exist.

Pure core (`strip`, `judge`, `report`): plain functions on pod dicts, no I/O. Edges (`files`,
`cluster`, `progress`, `command`): reading pod files, listing pods through the official
`kubernetes` client, the progress bar and the `audit` subcommand.
"""
