"""The LLM side of the port stage (issue 6): tools so far; backends and the loop to come."""
