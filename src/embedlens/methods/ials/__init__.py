"""iALS: implicit ALS with frequency-scaled regularisation (Rendle et al. 2022)."""
