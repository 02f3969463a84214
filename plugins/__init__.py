"""pycorefile's built-in plugins, one sub-package each (like CoreDNS's ``plugin/``)."""
