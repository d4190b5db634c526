// Internal, for the executables only: the environment every clipxai executable runs LibTorch,
// OpenBLAS and glibc's allocator under: OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4 and
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=2^32:
// glibc.malloc.trim_threshold=2^32.
//
// Why: LibTorch runs its intra-op work on libgomp's OpenMP threads. libgomp's default lets an
// idle thread spin (GOMP_SPINCOUNT, 300000 pauses) after every parallel region before it sleeps;
// a forward pass runs hundreds of short regions with OpenBLAS's own threads in between, so the
// spinning takes the cores that the work needs (README, Performance). OpenBLAS's idle threads
// likewise yield-spin for 2^28 cycles after each product before they sleep; between images they
// took the cores from the overlays being encoded. 2^4 cycles is the least OpenBLAS accepts.
// glibc's allocator by default gives every block above its mmap threshold its own mapping and
// unmaps it when freed, and trims its heap: each forward pass's activations, and the model's
// weights, then reach the kernel page by page, 4 KiB per fault. The tunables keep freed memory
// for reuse and back the allocator's memory with transparent huge pages where the kernel offers
// them by madvise, which cuts a run's page faults more than tenfold (README, Performance).
// The three libraries read these variables once, while they initialise, before main: so the
// environment must hold them when the process starts. The `clipxai` command is a small launcher
// (launcher.cpp) that execs the engine's binary with them; every executable linking the engine
// also re-executes itself with them from its .preinit_array when started without them
// (openmp_wait_policy.cpp), which costs a second load of LibTorch's libraries.
#pragma once

// `envp` with OMP_WAIT_POLICY=passive added, and each other variable above unless envp sets it:
// a new array from malloc (the strings are envp's and static ones). Null when envp sets
// OMP_WAIT_POLICY already (whatever its value: a caller's choice is kept) or malloc fails. Safe
// to call before the C++ runtime is initialised.
extern "C" char** clipxai_passive_environment(char** envp);
