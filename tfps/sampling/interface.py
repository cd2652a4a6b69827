"""The one sampler interface: what the library's `PredictiveSampler` and a loaded export's
`ExportedSampler` both offer, so that every caller (launchers, benchmarks, replicated sampling)
works with either.

Shapes: noise float32 `[B, *event_shape, K]`, evidence int32 `[B, *event_shape]` with a bool
mask of the same shape; results are `tfps.sampling.predictive.SampleResult`s in the event shape.
"""

from typing import Protocol, runtime_checkable


@runtime_checkable
class Sampler(Protocol):
    """A sampler of one ARM: exact ancestral samples for given noise, by any of its `methods`."""

    event_shape: tuple
    image_shape: tuple
    num_categories: int
    num_variables: int

    @property
    def methods(self):
        """The method names this sampler offers (`ancestral` first)."""

    def check_method(self, method):
        """Raises ValueError naming `method` unless it is one of `methods`."""

    def check_noise(self, noise):
        """Noise as float32 `[B, *event_shape, K]`; ValueError naming a wrong shape or dtype."""

    def sample(self, noise, method="fpi", evidence=None, evidence_mask=None):
        """One batch: the samples of `noise` (and evidence), a `SampleResult`."""

    def sample_from_seed(self, seed, batch_size, method="fpi", evidence=None, evidence_mask=None):
        """`sample` on Gumbel noise drawn from `seed` (an int or a pair of ints)."""

    def sample_scheduled(self, noise, method="fpi", slots=32, evidence=None, evidence_mask=None):
        """N samples through `slots` slots (`tfps.sampling.slots`); the same samples as `sample`."""

    def sample_scheduled_from_seed(
        self, seed, num_samples, slots=32, method="fpi", evidence=None, evidence_mask=None
    ):
        """`sample_scheduled` on Gumbel noise drawn from `seed`."""

    def loop_function(self, method):
        """`(noise, evidence, evidence_mask) -> SampleResult`: the compiled batch loop."""

    def scheduled_loop_function(self, method):
        """`(noise, evidence, evidence_mask, slots) -> SampleResult`: the scheduled loop."""
