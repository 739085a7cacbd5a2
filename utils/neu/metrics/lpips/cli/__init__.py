# Copyright 2026 The metrics.lpips authors.
# Licensed under the Apache License, Version 2.0.
"""What the commands share: exit codes, logging and output (:mod:`common`), Ctrl-C between
items (:mod:`interrupt`), progress on stderr (:mod:`progress`), MPI sharding (:mod:`mpi`),
and scoring files through the input pipeline (:mod:`scoring`). Library code never imports
this package: only the command modules (``compute``, ``convert``, ...) do."""
