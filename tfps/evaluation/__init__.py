"""Measuring and showing samplers: timing (`timing`), Table 1 benchmarks (`benchmarking`,
`scheduling_report`), TensorBoard summaries (`summaries`) and pictures (`pictures`). Imports
`distribute` and `sampling`.
"""
