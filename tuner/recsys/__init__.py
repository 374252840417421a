"""The recommender core: datasets and splits, models, BPR training, full-ranking metrics, baselines.

Pure PyTorch/PyG: no Ray, no experiment storage. Importing this package imports nothing heavy; its modules do.
"""
