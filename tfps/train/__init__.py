"""Training: typed configs (`config`), the one resumable loop (`trainer`), the ARM and autoencoder
tasks (`training`, `autoencoder_training`), the learned heads' objective and accuracy
(`forecasting`), a trained autoencoder as the ARM's data source (`latents`: its restored encoder
for `tfps.data.open`) and the run directory (`rundir`). Imports `distribute`, `data`, `models`
and `sampling`.
"""
