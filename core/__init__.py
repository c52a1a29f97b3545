"""Domain core: the types every layer shares. Depends on the standard library and numpy only."""
