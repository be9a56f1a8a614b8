"""Private utilities shared by every stage: BLAS threads, memory, torch devices,
persistence, parameter checks, sampling and the command lines' common pieces."""
