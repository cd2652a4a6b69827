"""Serving: the SavedModel contract (`contract`, `contract_checks`), the saved module (`module`),
export and the exported sampler (`export`, `incremental_choice`), decoding latent samples
(`decoder`) and one loader for run directories and exports (`loading`). The top room: it may
import every other.
"""
