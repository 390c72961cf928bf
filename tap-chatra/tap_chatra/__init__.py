"""Singer tap for Chatra."""
