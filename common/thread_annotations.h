// Clang thread-safety annotations (checked by the FANOUT_THREAD_SAFETY build).
// They expand to nothing for compilers without the analysis.
#pragma once

#if defined(__clang__)
#define FANOUT_TSA(x) __attribute__((x))
#else
#define FANOUT_TSA(x)
#endif

#define CAPABILITY(x) FANOUT_TSA(capability(x))
#define SCOPED_CAPABILITY FANOUT_TSA(scoped_lockable)
#define GUARDED_BY(x) FANOUT_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) FANOUT_TSA(pt_guarded_by(x))
#define ACQUIRE(...) FANOUT_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FANOUT_TSA(release_capability(__VA_ARGS__))
#define REQUIRES(...) FANOUT_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) FANOUT_TSA(locks_excluded(__VA_ARGS__))
