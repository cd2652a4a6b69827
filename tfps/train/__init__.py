"""Training: typed configs (`config`), the one resumable loop (`trainer`), the ARM and autoencoder
tasks (`training`, `autoencoder_training`), the learned heads' objective and accuracy
(`forecasting`), latents of a trained autoencoder as data (`latents`, `arm_data`) and the run
directory (`rundir`). Imports `distribute`, `data`, `models` and `sampling`.
"""
