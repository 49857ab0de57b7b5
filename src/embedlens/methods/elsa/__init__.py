"""ELSA: the scalable linear shallow autoencoder (Vančura et al. 2022)."""
