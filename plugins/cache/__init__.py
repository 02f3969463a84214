"""CoreDNS's cache plugin."""
