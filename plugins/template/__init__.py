"""CoreDNS's template plugin."""
