"""Counterfactual replay: real prices and request traces through the planner, the baselines and a hindsight bound.

`gridshift simulate` (gridshift.cli.simulate) drives `runner.run_replay`. The replay (demand, capacity,
prices, cost rates) is in `replay`, the minute-step simulator and its accounting in `engine`, the online
policies in `policies`, the lower bound in `hindsight`, and a one-replica continuous-batching simulation
that checks the planner's latency model in `replica`.
"""
