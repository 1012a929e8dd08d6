"""The LLM side of the port stage (issue 6): backends and tools so far; the loop is still to come."""
