"""Errors of the shared store.

StorageError
├── StorageUnavailable   the database cannot be reached or opened (message says which)
└── DuplicateKey         a unique key clashed (internal: the store retries or reports it)
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of the store's errors."""


class StorageUnavailable(StorageError):
    """The database is unreachable, closed or its driver is missing."""


class DuplicateKey(StorageError):
    """A write broke a unique key."""
