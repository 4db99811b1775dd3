"""Clients for the Kalixo API. Imported only by commands that talk to it (requests is heavy)."""
