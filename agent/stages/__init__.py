"""The eight stages, in order. Each is a module with one entry function `<name>(run) -> dict`."""
