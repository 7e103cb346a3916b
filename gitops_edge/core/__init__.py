"""Pure functions over the model: parsing, validation, hashing, diff, planning."""
