"""Sampling from an ARM: every way a sample is drawn, the room every other builds on.

The ARM protocol as the sampler sees it and the likelihood of its logits (`protocol`), event
shapes and input checks (`events`), Gumbel noise (`noise`), the forecasters (`forecasters`), the
`tf.while_loop`s (`loops`), the methods (`methods`), the queue of scheduled slots (`slots`),
incremental calls (`incremental`, `kv_cache`), the sampler itself (`predictive`, `adapter`,
`budget`), and the samplers built on it: an ARM in another ordering (`ordered_view`), inpainting
in the ordering with the most evidence (`inpainting`) and the first j codes of a prior
(`prefix`). It imports no other tfps room: an ordering is any object with a permutation
(`tfps.models.orderings.Ordering` is one).
"""
