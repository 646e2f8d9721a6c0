"""Verify and commit: manifests, markers, tokens, state, and the commit protocol."""
