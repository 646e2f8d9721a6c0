"""The flow of an export: one table's steps (export) and many tables' runs (runner)."""
