"""Checks of a server (protocol.md §9 plus items 19-20): the suite acts as a board.

:func:`~conformance.server.runner.run_server_checks` drives the server over real sockets into a
:class:`~conformance.server.records.RunRecord`; :func:`~conformance.server.check.check_run`
judges it, item by item, in the groups of :mod:`conformance.server.items`.
"""
