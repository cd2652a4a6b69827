"""Sampling from an ARM: the primitives every other room builds on.

The ARM protocol as the sampler sees it (`protocol`), event shapes and input checks (`events`),
Gumbel noise (`noise`), the forecasters (`forecasters`), the `tf.while_loop`s (`loops`), the
methods (`methods`), the queue of scheduled slots (`slots`), incremental calls (`incremental`,
`kv_cache`) and the sampler itself (`predictive`). It imports no other tfps room.
"""
