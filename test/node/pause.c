/*
 * The pod sandbox ("pause") container of the node test tier. test/node/image.ts compiles it with
 * `gcc -static -Os -s` into localhost/openbao-backup/pause:1, an image holding only /pause, which
 * containerd's sandbox_image names so that nothing is ever pulled from registry.k8s.io.
 *
 * The process only has to exist while the pod does: the kubelet creates the pod's namespaces
 * around it and every other container joins them. As the pod's PID 1 it reaps orphaned children
 * (SIGCHLD), and it exits 0 when asked to stop (SIGINT, SIGTERM). PID 1 gets no default signal
 * actions, so both handlers are needed.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

int main(void) {
  struct sigaction sa;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sa.sa_handler = stop;
  if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) return 1;
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  if (sigaction(SIGCHLD, &sa, NULL) != 0) return 1;
  for (;;) pause();
}
