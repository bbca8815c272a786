"""Protocol conformance suite: check a server (or a device) against protocol.md §9/§10."""
