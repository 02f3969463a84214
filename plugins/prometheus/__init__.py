"""CoreDNS's prometheus plugin."""
