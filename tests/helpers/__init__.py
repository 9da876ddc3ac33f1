"""Test-side helpers shared by several test files: batches in the datamodules' formats, parameter snapshots, the
tiny method registry (``tests.methods``) builds on these."""
