"""node2vec and DeepWalk: walks on item graphs, embedded by PMI-SVD or skip-gram."""
