"""The atende command line: the composition root that wires settings, clients and services."""
