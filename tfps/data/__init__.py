"""Data for training: the embedded sets (`builtin`, `photos`, `text`), the user's own data
(`sources`: tfds, `.npz`, image folders) and the checks that name bad data (`checks`). Imports no
other room.
"""
