"""Programs that run inside the sandbox: each reads arguments, writes a JSON result file."""
