"""Publishing a run and checking what it claims: the evidence manifest a branch carries,
`integrate verify`, and one client per service (GitHub, the Hugging Face Hub)."""
