"""``earthplat pretrain``: LightningCLI over ``LatentMIMModule`` and ``PretrainDataModule``,
with the Trainer built by the core's ``TrainerConfig`` (strategies, checkpoints, throughput,
energy), so YAML configs use ``model:``, ``data:`` and ``trainer:`` sections with
``class_path``/``init_args`` where a class is chosen.

A run directory resumes automatically: ``fit`` without ``--ckpt_path`` continues from
``RUN_DIR/checkpoints/last.ckpt`` when it exists.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import MISSING, fields
from pathlib import Path

import lightning as L
from lightning.pytorch.cli import LightningCLI

from earthplat.traincore.checkpoint import find_resume_checkpoint
from earthplat.traincore.trainer import TrainerConfig


def make_trainer(callbacks: list[L.Callback] | None = None, **kwargs) -> L.Trainer:
    """Build the Trainer from ``TrainerConfig`` fields (its signature is the config's)."""
    kwargs = {k: v for k, v in kwargs.items() if not (k in _FACTORY_FIELDS and v is None)}
    return TrainerConfig(**kwargs).build(callbacks=list(callbacks or []))


_hints = typing.get_type_hints(TrainerConfig)
_FACTORY_FIELDS = {f.name for f in fields(TrainerConfig) if f.default_factory is not MISSING}


def _parameter(name: str, p: inspect.Parameter) -> inspect.Parameter:
    if name in _FACTORY_FIELDS:  # nested configs: None means "the config's own default"
        return p.replace(
            kind=inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_hints[name] | None
        )
    return p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=_hints[name])


make_trainer.__signature__ = inspect.Signature(
    [
        inspect.Parameter(
            "callbacks",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=list[L.Callback] | None,
        )
    ]
    + [_parameter(n, p) for n, p in inspect.signature(TrainerConfig).parameters.items()],
    return_annotation=L.Trainer,
)


def _field_docs(cls: type) -> dict[str, str]:
    """Field name -> its attribute docstring, on one line (what ``--trainer.X --help`` says)."""
    import docstring_parser

    doc = docstring_parser.parse_from_object(cls)
    return {p.arg_name: " ".join((p.description or "").split()) for p in doc.params}


_docs = _field_docs(TrainerConfig)
make_trainer.__doc__ = (
    (TrainerConfig.__doc__ or "")
    + "\n\nArgs:\n    callbacks: Lightning callbacks added to the run's own.\n"
    + "\n".join(
        f"    {f.name}: {_docs.get(f.name) or f'see TrainerConfig.{f.name}'}"
        for f in fields(TrainerConfig)
    )
)


class EarthplatCLI(LightningCLI):
    def resume_checkpoint(self) -> Path | None:
        """The one decision on resuming a run: its run directory's last checkpoint, if any
        (``earthplat finetune|pretrain fit``, ``run_finetune`` and the platform's jobs)."""
        ckpt = find_resume_checkpoint(self.trainer.default_root_dir)
        if ckpt is not None and self.trainer.is_global_zero:
            print(f"resuming from {ckpt}")
        return ckpt

    def before_fit(self) -> None:
        cfg = self.config_init[self.subcommand]
        if cfg.get("ckpt_path") is None:
            ckpt = self.resume_checkpoint()
            if ckpt is not None:
                cfg["ckpt_path"] = str(ckpt)


def run_pretrain_cli(args: list[str] | None = None, from_argv: bool = False) -> EarthplatCLI:

    from earthplat.data.pretrain import PretrainDataModule
    from earthplat.train.pretrain import LatentMIMModule

    args = list(args or [])
    if not args or args[0].startswith("-"):
        args = ["fit", *args]
    # ``args`` are parsed as given; sys.argv stays whole, since Lightning starts the other ranks
    # of a multi-device run by re-running the command line
    return EarthplatCLI(
        LatentMIMModule,
        PretrainDataModule,
        trainer_class=make_trainer,
        args=args,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "prog": "earthplat pretrain",
            "description": "Pretrain an encoder with Latent MIM Lite.",
        },
    )
