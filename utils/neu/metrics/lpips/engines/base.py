# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""The contract every engine keeps: what the :class:`~.scorer.Scorer`, the
:class:`~.ensemble_scorer.EnsembleScorer`, E-LPIPS' estimates (:mod:`~metrics.lpips.ensemble`)
and tiled scoring (:mod:`.tiling`) may ask of one, and the capabilities they may read instead
of asking which engine it is.

Arrays in and out: images are float32 (N, 3, H, W) in [-1, 1] (``to_input`` makes them from
channel-last images); features are lists of (N, C_l, h_l, w_l) arrays, one per tap; a batch
of *pairs* is 2N images, the first N compared with the last N. An engine computes the graphs
of :class:`~metrics.lpips.lpips.LPIPS` and never changes a score beyond float rounding.
"""
import abc

from ..errors import EnvironmentProblem


class BackendError(EnvironmentProblem, RuntimeError):
    """The requested backend cannot run here."""


class Engine(abc.ABC):
    """One way of running an :class:`~metrics.lpips.lpips.LPIPS` network on numpy arrays.

    Capabilities (class or instance attributes):
        name (str): what ``--backend`` calls it.
        takes_dropout_masks (bool): :meth:`features` accepts ``masks`` (E-LPIPS' dropout), so
            ensembles run their draws on the engine, in passes of any size.
        pixels_per_pass (int or None): the most pixels of a pair a pass should hold (passes
            only get slower past it); None for no limit.
        winograd (bool): whether its convolutions use Winograd's algorithm where that pays.
    """

    name = None
    takes_dropout_masks = False
    pixels_per_pass = None
    winograd = False

    @abc.abstractmethod
    def to_input(self, images):
        """Channel-last (N, H, W, 3) images (uint8, uint16, or float in [0, 1]) -> contiguous
        float32 (N, 3, H, W) in [-1, 1]."""

    @abc.abstractmethod
    def features(self, x, masks=None):
        """The trunk's taps of ``x``. ``masks`` (only where ``takes_dropout_masks``): one array
        per convolution, of its input's shape, that multiplies that input."""

    @abc.abstractmethod
    def distances(self, feats0, feats1, size=None):
        """(N,) scores between two equal-shaped feature lists; with ``size`` = (H, W) of the
        images, a tuple (scores, (N, H, W) spatial maps)."""

    @abc.abstractmethod
    def pair_distances(self, x, size=None):
        """Scores of the pairs (x[i], x[N + i]) of 2N images, as :meth:`distances`."""

    @abc.abstractmethod
    def pair_layer_maps(self, x):
        """The per-tap (N, 1, h_l, w_l) distance maps of the pairs (x[i], x[N + i]), before
        their spatial means (tiled scoring pastes them together)."""

    @abc.abstractmethod
    def reduce_maps(self, layer_maps, size=None):
        """[total, per tap..., and with ``size`` the (N, 1, H, W) map] from per-tap maps."""

    @abc.abstractmethod
    def memory_kind(self, image_pixels=None):
        """Which of the tuning table's ``bytes_per_pixel`` (:mod:`.tuning`) a pass of images
        of ``image_pixels`` each takes (None: a tile pass of :meth:`pair_layer_maps`)."""

    def describe(self):
        """How the engine runs, for the log."""
        return self.name + (" (Winograd convolutions)" if self.winograd else "")
