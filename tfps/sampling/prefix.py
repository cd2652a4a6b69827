"""Anytime sampling [1]: the first j codes of a sequence ARM, exactly, and their prefix decoding.

A prior over ordered codes (a sequence ARM, e.g. `tfps.models.transformer.Transformer`, over the
n codes of `tfps.models.ordered_code.ChannelAutoencoder`) is sampled only up to the j-th code and
the decoder fills the rest with zeros [1, sec. 4]: the time of a sample is linear in j.

The prefix view (`PrefixLogits`) is the ARM over the first j positions: its logits are the
model's at positions < j for the input (x_1 .. x_j, 0, ..., 0). The model is autoregressive, so
those logits do not depend on what follows position j: every method of tfps sampling the view
for noise eps[:, :j] returns the first j variables of the model's ancestral sample for noise eps,
exactly (predictive sampling included [2, sec. 2.3]). `anytime_sample` then decodes the codes
with `num_codes=j`; `sample_within_budget` keeps the longest prefix finished within a budget of
ARM calls or seconds (`tfps.sampling.budget`). The prefix lengths that name fractions of a code
are the code's (`tfps.models.ordered_code.code_lengths`, `num_codes_of`).

#### References

[1]: Yilun Xu, Yang Song, Sahaj Garg, Linyuan Gong, Rui Shu, Aditya Grover and Stefano Ermon.
     Anytime Sampling for Autoregressive Models via Ordered Autoencoding. In ICLR, 2021.

[2]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import collections

import tensorflow as tf

from tfps.sampling import adapter, budget, events, predictive

Anytime = collections.namedtuple("Anytime", ["codes", "images", "result", "num_codes"])


def _sequence_shape(model):
    shape = tuple(int(s) for s in model.event_shape)
    if len(shape) not in (1, 2):
        raise ValueError(
            f"anytime sampling takes a prefix of a sequence ARM (event shape (n,) or (n, C)); "
            f"{type(model).__name__} has event shape {shape}"
        )
    return shape


class PrefixLogits(tf.Module):
    """`x [B, j(, C)] -> logits [B, j(, C), K]`: the model's logits at its first j positions for
    the input x followed by zeros (see the module)."""

    def __init__(self, model, num_codes):
        super().__init__(name="prefix_logits")
        self.model, self.shape = model, _sequence_shape(model)
        self.num_codes = events.check_num_codes(num_codes, self.shape[0])

    def __call__(self, x, training=False):
        x = events.pad_codes(x, self.num_codes, self.shape[0])
        out = self.model(x, training=training)
        logits = out[0] if isinstance(out, (tuple, list)) else out
        return logits[:, : self.num_codes]


def prefix_sampler(model, num_codes, **sampler_options):
    """The sampler (`tfps.from_logits_fn`) of the first `num_codes` variables of a sequence ARM:
    noise `[B, num_codes(, C), K]`. ValueError for an image ARM or a length outside 1..n."""
    fn = PrefixLogits(model, num_codes)
    shape = (fn.num_codes,) + fn.shape[1:]
    return adapter.from_logits_fn(fn, shape, int(model.num_categories), **sampler_options)


def anytime_sample(prior, noise, num_codes, method="fpi", autoencoder=None, sampler=None):
    """`Anytime(codes, images, result, num_codes)`: the first `num_codes` codes of the prior's
    sample for noise `[B, n(, C), K]` (the rest zero), and with `autoencoder` their decoding
    `autoencoder.decode(codes, num_codes=j)` (else images None). `sampler`: a `prefix_sampler`
    of this length to reuse (one is built otherwise); `result` its `SampleResult`. The whole
    noise is checked (`tfps.sampling.events.check_noise`: float, `[B, n(, C), K]`, finite), not
    only the first j columns the sampler reads."""
    sampler = sampler or prefix_sampler(prior, num_codes)
    fn = sampler.model.fn  # the PrefixLogits
    j, n = fn.num_codes, fn.shape[0]
    if j != num_codes:
        raise ValueError(f"the sampler samples {j} codes, not num_codes={num_codes}")
    noise = events.check_noise(noise, fn.shape + (int(sampler.num_categories),))
    result = sampler.sample(noise[:, :j], method)
    codes = events.pad_codes(result.samples, j, n)
    images = None if autoencoder is None else autoencoder.decode(codes, num_codes=j)
    return Anytime(codes, images, result, j)


def sample_within_budget(
    prior, noise, autoencoder=None, max_calls=None, max_seconds=None, method="fpi", sampler=None
):
    """`Anytime(codes, images, result, num_codes)` of the longest prefix of codes finished within
    a budget of ARM calls and/or seconds (`tfps.sampling.budget`): num_codes, int32 `[B]`, the codes
    each example finished; codes `[B, n(, C)]` the prior's sample there, exactly, and 0 after;
    images, with `autoencoder`, `decode(codes, num_codes)`. `sampler`: a sampler of the whole
    code to reuse (default `sampler_for_model(prior)`, which has `ancestral_cached` for a
    Transformer: its first j codes are a budget of j calls). ValueError for a bad budget
    (max_calls an int >= 1, max_seconds finite > 0) or a sampler of another shape."""
    shape = _sequence_shape(prior)
    sampler = sampler or predictive.sampler_for_model(prior)
    if tuple(sampler.event_shape) != shape:
        raise ValueError(
            f"sample_within_budget takes a sampler of the whole code {shape}, not of "
            f"{tuple(sampler.event_shape)}"
        )
    result, _ = sampler.sample_within_budget(noise, method, max_calls, max_seconds)
    codes, num_codes = budget.finished_rows(result.samples, result.accepted_at, shape)
    images = None if autoencoder is None else autoencoder.decode(codes, num_codes=num_codes)
    return Anytime(codes, images, result, num_codes)
