"""The commands a person types (``dsrl-ray ...``) and the jobs behind them: train, pretrain, pipeline."""
