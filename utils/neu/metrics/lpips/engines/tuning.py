# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""How the engines run each trunk: measured settings, kept apart from the metric's records
(:mod:`~metrics.lpips.trunks`) because they change no score. All were measured on 2 cores
(``benchmarks/bench_lpips.py``, ``benchmarks/bench_big.py``).

Only ``export_size`` and ``winograd_tiles`` reach an exported graph, so only they name the
export cache's entries (:mod:`.onnx.cache`); a new memory slope or pass size keeps every
user's cache.
"""
import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Tuning:
    """``export_size``: the side at which the trunk is exported to ONNX (one where no pool needs
    padding). ``winograd_tiles``: kernel sizes paired with Winograd output tiles, None for the
    defaults. ``pixels_per_pass``: the most pixels of a pair an ONNX Runtime pass takes, past
    which passes only get slower (the working set leaves the caches) and cost memory.
    ``winograd_max_pixels``: the image size (H x W) above which direct convolutions are faster
    than Winograd's (``bench_big.py --sweep``). ``split_max_pixels``: the image size up to
    which a pass is split among the threads (:mod:`.shards`); above it the outputs to join
    are large and one session on every thread is faster. ``bytes_per_pixel``: the peak memory a pass adds
    per pixel of its images, per engine kind (``winograd``, ``direct`` as large images run it,
    ``nnabla``), for the memory budget: the slopes of peak memory between 512 and 1024 px
    pairs that ``bench_big.py --sweep --what maps --variants winograd direct nnabla``
    measured, plus a fifth; the direct slope grows with the pass, so it is the one of the
    largest passes measured (whole pairs through the CLI, ``/usr/bin/time``), plus 5-10%: VGG
    797 B/px between a 2448 x 1632 and a 2400 x 1800 pair (567 between 512 and 1024 px),
    AlexNet 77 over a 6000 x 4000 pair."""
    export_size: int = 64
    winograd_tiles: typing.Optional[typing.Tuple[typing.Tuple[int, int], ...]] = None
    pixels_per_pass: int = 1 << 19
    winograd_max_pixels: int = 256 * 256
    split_max_pixels: int = 256 * 256
    bytes_per_pixel: typing.Tuple[typing.Tuple[str, int], ...] = (
        ("winograd", 260), ("direct", 85), ("nnabla", 230))  # measured 216, 77, 188 (alex)

    def memory_slope(self, kind):
        """Bytes per pixel of a pass of the engine kind ``kind`` (see ``bytes_per_pixel``)."""
        return dict(self.bytes_per_pixel)[kind]


TUNING = {
    # AlexNet's 3x3 layers see odd maps (3x3 at 64 px, 15x15 at 256 px), which 3x3 Winograd
    # tiles fit and 4x4 ones overhang: 64 px pairs 10-13% faster, 256 px 1-5% slower. One
    # pair: Winograd 0.069 s at 512 px against 0.058 direct, 0.326 against 0.224 at 1024;
    # VGG 0.97 against 1.08 s at 512 px, 5.2 against 4.3 s at 1024 (bench_big.py --sweep).
    # Split passes (2AFC, 8 triplets a pass): 256 px 98.4 against 83.3 triplets/s; 512 px
    # (2 triplets) 15.8 against 17.1, so the large-image engine never splits.
    "alex": Tuning(winograd_tiles=((3, 3), (5, 2))),
    # VGG is fastest at 2 pairs of 256 px and 8-16 of 64 px per pass. Split passes (2AFC):
    # 128 px 22.2 against 20.1 triplets/s, 256 px 4.86 against 5.14 (its taps are large).
    "vgg": Tuning(pixels_per_pass=1 << 17, winograd_max_pixels=512 * 512,
                  split_max_pixels=128 * 128,
                  bytes_per_pixel=(("winograd", 1750), ("direct", 840),
                                   ("nnabla", 2600))),  # measured 1444, 797, 2156
    # Exported at 31 px, where no ceil-mode pool pads: 31 -> 15 -> 7 -> 3 -> 1. Memory not
    # measured (no SqueezeNet weights here): twice AlexNet's.
    "squeeze": Tuning(export_size=31,
                      bytes_per_pixel=(("winograd", 520), ("direct", 180), ("nnabla", 460))),
    # Memory not measured: twice VGG's.
    "elpips-vgg": Tuning(pixels_per_pass=1 << 17, winograd_max_pixels=512 * 512,
                         split_max_pixels=128 * 128,
                         bytes_per_pixel=(("winograd", 3500), ("direct", 1700), ("nnabla", 5200))),
}


def tuning_for(model):
    """The :class:`Tuning` of the trunk named ``model`` (every trunk has one)."""
    return TUNING[model]
