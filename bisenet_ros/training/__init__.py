"""Training without ROS: datasets, augmentation, losses, the trainer, evaluation.

Modules: ``config`` (YAML + defaults), ``datasets`` (CamVid, Cityscapes, custom), ``check``
(``bisenet check-dataset``), ``transforms``, ``sampler`` (the seeded sample stream),
``losses`` (OHEM + booster heads), ``optim`` (parameter groups, warm-up + poly),
``distributed`` (torchrun, CPU SyncBatchNorm), ``trainer``, ``evaluation`` (mIoU as
cityscapesscripts), ``commands`` (the ``bisenet`` subcommands).
"""
