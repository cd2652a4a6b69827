"""Measuring and showing samplers: timing (`timing`), Table 1 benchmarks (`benchmarking`,
`scheduling_report`), TensorBoard summaries (`summaries`), pictures (`pictures`), FARM's
inpainting scores (`occlusions`) and sample quality (`frechet`). Imports `distribute` and
`sampling`.
"""
