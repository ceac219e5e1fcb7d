"""Domain-free infrastructure shared by every atende process."""
