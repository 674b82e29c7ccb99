"""Storage: SQLModel tables and the one repository that reads and writes them."""
