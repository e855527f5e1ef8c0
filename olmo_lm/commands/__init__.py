"""The ``olmo-lm`` commands by group; ``olmo_lm.cli`` builds the parser over them."""
