"""Reading whole checkpoints in tests (weights, Adam slots, counters)."""

import os

from bert_pretraining.run_layout import checkpoint_name


def read_all_tensors(prefix: str) -> dict:
    """``{name: array}`` of every tensor of the checkpoint at ``prefix``."""
    import tensorflow as tf  # here, so that importing this module stays cheap

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def weights_at(directory, step: int) -> dict:
    """Every tensor of ``<directory>/model.ckpt-<step>``."""
    return read_all_tensors(os.path.join(str(directory), checkpoint_name(step)))
