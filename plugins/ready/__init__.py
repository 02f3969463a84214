"""CoreDNS's ready plugin."""
