"""One migration per schema change, oldest first; their ids name what each one does."""
