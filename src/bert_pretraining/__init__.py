"""BERT pretraining as a Snakemake workflow: corpus -> records -> segments -> export.

Modules follow the data path: ``corpus`` (sharding), ``tokenization`` (WordPiece),
``instances`` (Google's masked-LM/NSP instances), ``tfrecords`` (writing records
without TensorFlow), ``plan`` (segments: what runs when), ``schedule`` (learning rate), ``modeling``,
``optimization``, ``inputs``, ``training``, ``checkpoints``, ``export``, ``status``.
"""

__version__ = "0.1.0"
