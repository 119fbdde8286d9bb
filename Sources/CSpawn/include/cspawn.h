// posix_spawn with a working directory and clean signal state, for Plot's Subprocess.
// Foundation's Process on Linux detects child exit through a SIGCHLD dispatch source, which loses
// the signal when it is delivered to a thread that does not block it (OpenBLAS's pool threads,
// created before main): `waitUntilExit` then blocks forever. We spawn and `waitpid` ourselves.
#ifndef CSPAWN_H
#define CSPAWN_H
#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (NULL-terminated), in `cwd` (NULL: the current folder),
/// with its standard streams on `in_fd`, `out_fd`, `err_fd` (-1: /dev/null). Signal dispositions
/// the parent ignores (SIGPIPE, SIGTERM) and the signal mask are reset to the defaults.
/// Returns 0 and sets `*pid`, or an errno value.
int cspawn_start(const char *path, char *const argv[], char *const envp[], const char *cwd,
                 int in_fd, int out_fd, int err_fd, pid_t *pid);

/// pipe2(fds, O_CLOEXEC): both ends close on exec, so only the dup2'd ends reach a child.
int cspawn_pipe(int fds[2]);

#endif
