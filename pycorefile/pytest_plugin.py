"""pytest fixtures for faking DNS (dns_mock, dns_server)."""
