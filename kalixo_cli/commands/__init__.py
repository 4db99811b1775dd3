"""One module per command (group), named after it; the options they share in options.py."""
