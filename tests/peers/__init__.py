"""Deliberately independent peers that tests run our device and conformance code against."""
