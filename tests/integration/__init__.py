"""Integration tests: real sockets, real upstream servers."""
