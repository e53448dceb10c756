"""The paper's tables: the table runner, the shallow baselines, plots."""
