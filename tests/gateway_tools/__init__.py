"""Tools for the gateway's own tests; their runs are counted in Redis, under the test's namespace.

Counting in Redis (not in memory) lets a test see runs made by another gateway process.
"""
