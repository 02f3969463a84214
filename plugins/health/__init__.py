"""CoreDNS's health plugin."""
