"""OLMo-family language models trained on ``earthplat.traincore``.

Like ``earthplat``, importing this package does not import torch.
"""

__version__ = "0.1.0"
