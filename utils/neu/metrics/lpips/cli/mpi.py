# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""Sharing a run between processes (and machines) with MPI: `mpirun -n K python -m ...`."""
import os

# Set by the launchers of Open MPI, MPICH/Intel MPI (PMI) and PMIx-based ones.
_LAUNCHER_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE")


class World(object):
    """This process's place in the run: ``rank`` of ``size``; ``size`` 1 without MPI."""

    def __init__(self, comm=None):
        self.comm = comm
        self.communicator = None  # NNabla's, for gradients on GPUs (nnabla_communicator)
        self.rank = comm.Get_rank() if comm else 0
        self.size = comm.Get_size() if comm else 1
        self.local_rank = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK",
                                             os.environ.get("MPI_LOCALRANKID", 0)))
        self.local_size = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE",
                                             os.environ.get("MPI_LOCALNRANKS", 1)))

    def share(self, items):
        """This rank's share of ``items``: (index, item) for every ``size``-th item."""
        return [(i, item) for i, item in enumerate(items) if i % self.size == self.rank]

    def allgather(self, value):
        return self.comm.allgather(value) if self.comm else [value]


def world():
    """The MPI world when launched by mpirun/mpiexec with more than one process, else a
    single-process world. Under a launcher without mpi4py it raises ``RuntimeError``."""
    size = max(int(os.environ.get(v, 1)) for v in _LAUNCHER_SIZE_VARS)
    if size <= 1:
        return World()
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("launched by an MPI launcher with {} processes but mpi4py cannot be "
                           "imported ({}); pip install mpi4py".format(size, e)) from None
    return World(MPI.COMM_WORLD)


def nnabla_communicator(context):
    """NNabla's data-parallel communicator (NCCL) for a GPU ``context``, initialised, as
    NNabla's examples sum gradients over GPUs; None for the CPU, which NNabla has none for."""
    if not any(backend.startswith(("cuda", "cudnn")) for backend in context.backend):
        return None
    import nnabla.communicators as C
    communicator = C.MultiProcessDataParalellCommunicator(context)
    communicator.init()
    return communicator
