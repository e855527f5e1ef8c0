"""earthplat: multimodal Earth-observation foundation models and the platform around them.

Importing the package is cheap on purpose: nothing here pulls torch, so the API layer, the CLI's
``--help`` and data tooling start fast. Heavy modules are imported where they are used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
