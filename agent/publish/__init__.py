"""Publishing and review: the GitHub and Hub clients, pushing, the evidence and `integrate verify`."""
