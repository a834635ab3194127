"""One module per outside system, each implementing a port from chalicelib.ports."""
