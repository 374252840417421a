"""Where an experiment lives and what it holds: storage, the experiment folder's layout, per-epoch records,
provenance, baselines and the exported Optuna study — pyarrow and pandas, no Ray, no torch.
`tuner.experiment.read.Experiment.open(path)` is the one read model the commands and the analysis use."""
