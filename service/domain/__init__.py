"""Domain rules: plain keyword-only functions over a Session. They flush; the caller commits."""
