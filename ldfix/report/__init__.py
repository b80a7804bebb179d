"""Pure formatters: Report -> str."""
