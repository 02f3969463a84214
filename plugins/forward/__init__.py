"""CoreDNS's forward plugin."""
