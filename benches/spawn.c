/*
 * spawn: run one command and report its wall time and rusage on a file descriptor.
 *
 *   spawn FD /abs/path/program [args...]   (environment and stdio pass through unchanged)
 *
 * Why not measure from Python: Linux carries a process's RSS high-water mark across exec, and
 * a child forked (or vforked) from the benchmark harness starts with the harness's RSS, so
 * ru_maxrss of a Python-spawned child can never be lower than the harness itself. This
 * launcher is tiny, so the children it forks start near zero and ru_maxrss is their own.
 * Output on FD: "<exit status> <wall s> <user s> <sys s> <maxrss KiB>\n".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

int main(int argc, char **argv) {
	struct timespec begin, end;
	struct rusage usage;
	int status, fd;
	pid_t pid;

	if (argc < 3) {
		fputs("usage: spawn FD /abs/path/program [args...]\n", stderr);
		return 2;
	}
	fd = atoi(argv[1]);
	clock_gettime(CLOCK_MONOTONIC, &begin);
	pid = fork();
	if (pid < 0) {
		perror("spawn: fork");
		return 2;
	}
	if (pid == 0) {
		close(fd);
		execve(argv[2], argv + 2, environ);
		perror("spawn: execve");
		_exit(127);
	}
	if (wait4(pid, &status, 0, &usage) < 0) {
		perror("spawn: wait4");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	dprintf(fd, "%d %.6f %.6f %.6f %ld\n",
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
		(end.tv_sec - begin.tv_sec) + (end.tv_nsec - begin.tv_nsec) / 1e9,
		seconds(usage.ru_utime), seconds(usage.ru_stime), usage.ru_maxrss);
	return 0;
}
