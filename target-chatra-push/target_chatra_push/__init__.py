"""Singer target that sends Chatra messages."""
