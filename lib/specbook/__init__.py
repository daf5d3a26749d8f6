"""specbook: the helper lib behind the Chain-of-Draft / speculative decoding research book."""
