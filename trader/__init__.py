"""The trading loop (backtest now, paper/live later), reports and the `cryptoscalp` CLI."""
