"""Drawing samples of a loaded model and writing them out (the work of `launch/sample.py`).

Writes `<output_dir>/samples_<method>.npy` (int32 `[N, H, W, C]`) and, as PNG, the sample grid,
the forecasting-mistake map [1, Figures 3-4] and the convergence map next to the ancestral
baseline's [1, Figure 6]; reports the ARM calls as a percentage of d = H * W * C [1, Table 1].
With a `logdir` the same pictures and scalars go to TensorBoard (`tfps.evaluation.summaries`). The
samples of an ARM on autoencoder latents are decoded to images as well [1, sec. 4.2]. Sequences
(`tfps.models.arms` event shape `(L,)`, `(L, C)`) are drawn as strips, one per row; the samples of a
dataset with a vocabulary (`text_python`, `tfps.data.text`) are also decoded to
`samples_<method>.txt`, one line per sample (newlines shown as the two characters \n).

#### References

[1]: Rob Wiggers and Emiel Hoogeboom. Predictive Sampling with Forecasting Autoregressive Models.
     In ICML, 2020.
"""

import os
import time

import numpy as np

from tfps.data import text
from tfps.distribute import replicated
from tfps.evaluation import summaries
from tfps.sampling import noise as noise_lib
from tfps.sampling import slots as slots_lib
from tfps.serving import decoder, export, incremental_choice


def default_output_dir(path):
    """Where samples of the model at `path` go by default: `<run>/samples`, or
    `runs/samples/<name>_v<version>` for an export (never inside it)."""
    return export.default_samples_dir(path) or os.path.join(os.fspath(path).rstrip("/"), "samples")


def draw(sampler, method, num_samples, batch_size, seed, strategy=None, whole_event=None):
    """A `SampleResult` for all samples; sample k uses noise row k for `seed`.

    Samples run in `batch_size` slots with scheduling (`tfps.sampling.slots`): a finished slot takes
    the next pending sample, so the batch does not wait for its slowest member. With a
    `strategy` of several replicas, each replica runs `batch_size` slots on its contiguous share
    of the samples (`tfps.distribute.replicated.sample_replicated`: the same samples; `arm_calls` is
    the sum over the replicas). `whole_event`: the event shape of the whole code when `sampler`
    samples its first codes (anytime): the noise is the first codes' noise of the whole code's,
    so the samples are the first codes of the whole code's samples for `seed`.
    """
    event = tuple(whole_event or sampler.event_shape) + (sampler.num_categories,)
    noise = noise_lib.gumbel_noise((num_samples,) + event, seed)
    if whole_event is not None:
        noise = noise[:, : sampler.event_shape[0]]
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return sampler.sample_scheduled(noise, method, slots_lib.check_count(batch_size, "slots"))
    return replicated.sample_replicated(sampler, strategy, noise, method, batch_size)


def sample_to_files(
    loaded,
    method,
    num_samples,
    batch_size,
    seed,
    output_dir,
    logdir=None,
    log=print,
    strategy=None,
    num_codes=None,
):
    """Draws `num_samples` samples of `loaded` (a `tfps.serving.loading.Loaded`) with `method` and
    writes them, their pictures and (with `logdir`) TensorBoard summaries; `log` gets one line per
    step. `strategy`: spread the samples over its replicas (`draw`). `num_codes`: `loaded` is
    `tfps.serving.loading.load_prefix`'s, the first j codes of a prior over a channel code; the
    files are named `<method>_codes<j>` and the samples are the first j codes of the whole code's.

    Returns the `SampleResult`.
    """
    sampler = loaded.sampler
    if loaded.is_export:  # its signatures' own choice (launch.export --incremental)
        log(incremental_choice.describe_export(loaded.description))
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    name = method if num_codes is None else f"{method}_codes{num_codes}"
    whole = None if num_codes is None else loaded.decoder.code_shape
    result = draw(sampler, method, num_samples, batch_size, seed, strategy, whole)
    samples = result.samples.numpy()
    seconds = time.perf_counter() - start
    npy_path = os.path.join(output_dir, f"samples_{name}.npy")
    np.save(npy_path, samples)
    slots = min(batch_size, num_samples)
    # No evidence here, so the ancestral baseline of the convergence map is known without its
    # d calls.
    inspection = summaries.inspect(
        result,
        method,
        sampler.num_categories,
        seconds_per_sample=seconds / num_samples,
        seconds_description=(
            f"Wall-clock seconds per sample of one launcher run ({num_samples} "
            f"samples in {slots} slots), tf.function tracing included."
        ),
        baseline=summaries.ancestral_determined_at(sampler.image_shape),
        max_samples=num_samples,
    )
    pngs = summaries.write_pngs(os.path.join(output_dir, ""), name, inspection)
    per_sample = inspection.scalars[summaries.ARM_CALLS_PERCENT]
    accuracy = inspection.scalars.get(summaries.FORECAST_ACCURACY)
    log(
        f"method {method}: {num_samples} samples in {slots} slots: "
        f"{int(result.arm_calls)} ARM calls in all; each sample needed {per_sample:.1f}% of "
        f"d={sampler.num_variables} calls on average; forecast accuracy "
        f"{'n/a' if accuracy is None else f'{100 * accuracy:.1f}%'}; {seconds:.2f}s "
        f"(includes tracing)"
    )
    if num_codes is not None:
        log(f"anytime: the first {num_codes} of {whole[0]} codes of each sample, the rest zero")
    log(f"wrote {npy_path} and {', '.join(pngs)}")
    if logdir:
        run = summaries.run_dir(logdir, summaries.SAMPLE_RUN, name)
        summaries.write_tensorboard(run, loaded.step, inspection)
        log(f"wrote TensorBoard summaries to {run} (step {loaded.step})")
    vocabulary = (loaded.training.get("dataset") or {}).get("vocabulary")
    if vocabulary and samples.ndim == 2:
        lines = [text.decode(row, vocabulary).replace("\n", "\\n") for row in samples]
        text_path = os.path.join(output_dir, f"samples_{name}.txt")
        with open(text_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        log("decoded text: " + " | ".join(lines[:3]) + f"; wrote {text_path}")
    if loaded.decoder is not None:
        _, images_npy, images_png = decoder.write_decoded(loaded.decoder, samples, output_dir, name)
        log(f"decoded the latents: wrote {images_npy} and {images_png}")
    return result
