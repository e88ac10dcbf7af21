// SPDX-License-Identifier: GPL-2.0-only
// Tiny static PID 1 used to capture the console golden files (see ../SOURCES.md).
// Build: gcc -static -O1 -o init init.c -lpthread. The mode comes from the kernel command line
// (mode=crash|module|oom|hung|provoke|exit; provoke reads what=, secs=, delta=, inchild=,
// wt=, rcut=, hung=, refresh=).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/stat.h>

static void wr(const char *p, const char *s) {
  int fd = open(p, O_WRONLY);
  if (fd < 0) { printf("open %s: %s\n", p, strerror(errno)); return; }
  if (write(fd, s, strlen(s)) < 0) printf("write %s: %s\n", p, strerror(errno));
  close(fd);
}
static void off(void) { sync(); reboot(RB_POWER_OFF); }

static void loadp(const char *path, const char *params) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) { printf("open %s: %s\n", path, strerror(errno)); return; }
  if (syscall(SYS_finit_module, fd, params, 0) != 0) printf("finit_module %s: %s\n", path, strerror(errno));
  close(fd);
}

static void load(const char *path) { loadp(path, ""); }
static void provoke(void) {
  char params[256];
  const char *e;
  if ((e = getenv("wt"))) wr("/proc/sys/kernel/watchdog_thresh", e);
  if ((e = getenv("rcut"))) wr("/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout", e);
  if ((e = getenv("hung"))) wr("/proc/sys/kernel/hung_task_timeout_secs", e);
  snprintf(params, sizeof params, "what=%s secs=%s delta=%s", getenv("what") ? getenv("what") : "none",
           getenv("secs") ? getenv("secs") : "30", getenv("delta") ? getenv("delta") : "0");
  if (getenv("inchild")) {
    pid_t p = fork();
    if (p == 0) { loadp("/provoke.ko", params); _exit(0); }
    int st; waitpid(p, &st, 0);
    printf("child status %x\n", st); fflush(stdout);
  } else {
    loadp("/provoke.ko", params);
  }
  if (getenv("refresh")) wr("/proc/sys/vm/stat_refresh", "1");
}
static char *page;
static void *writer(void *arg) {
  int fd = (int)(long)arg;
  /* holds the tmpfs inode lock while faulting on the uffd page */
  ssize_t r = write(fd, page, 4096);
  printf("writer1 returned %zd\n", r);
  return 0;
}
static void *writer2(void *arg) {
  int fd = (int)(long)arg;
  char buf[16] = "x";
  ssize_t r = write(fd, buf, 1);
  printf("writer2 returned %zd\n", r);
  return 0;
}

static void hung(void) {
  mkdir("/tmp", 0755);
  if (mount("tmpfs", "/tmp", "tmpfs", 0, "")) perror("mount tmpfs");
  int fd = open("/tmp/f", O_CREAT|O_RDWR, 0600);
  int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
  if (uffd < 0) { perror("userfaultfd"); return; }
  struct uffdio_api api = { .api = UFFD_API };
  if (ioctl(uffd, UFFDIO_API, &api)) perror("UFFDIO_API");
  page = mmap(0, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  struct uffdio_register reg = { .range = { (unsigned long)page, 4096 }, .mode = UFFDIO_REGISTER_MODE_MISSING };
  if (ioctl(uffd, UFFDIO_REGISTER, &reg)) perror("UFFDIO_REGISTER");
  pthread_t t1, t2;
  pthread_create(&t1, 0, writer, (void*)(long)fd);
  sleep(1);
  pthread_create(&t2, 0, writer2, (void*)(long)fd);
  printf("threads started\n");
  fflush(stdout);
  sleep(100000);
}

static void oom(void) {
  pid_t p = fork();
  if (p == 0) {
    for (;;) {
      char *m = malloc(1 << 20);
      if (!m) continue;
      memset(m, 1, 1 << 20);
    }
  }
  int st;
  waitpid(p, &st, 0);
  printf("child status %x\n", st);
}

int main(void) {
  mount("proc", "/proc", "proc", 0, 0);
  mount("sysfs", "/sys", "sysfs", 0, 0);
  const char *mode = getenv("mode");
  if (!mode) mode = "crash";
  printf("init: mode=%s\n", mode); fflush(stdout);
  if (!strcmp(mode, "crash")) {
    wr("/proc/sys/vm/stat_refresh", "1");
    wr("/proc/sysrq-trigger", "c");
  } else if (!strcmp(mode, "module")) {
    load("/crc7.ko");
    load("/crc8.ko");
    wr("/proc/sysrq-trigger", "m");
    off();
  } else if (!strcmp(mode, "oom")) {
    oom();
    off();
  } else if (!strcmp(mode, "hung")) {
    wr("/proc/sys/kernel/hung_task_timeout_secs", "5");
    if (getenv("hpanic")) wr("/proc/sys/kernel/hung_task_panic", "1");
    hung();
  } else if (!strcmp(mode, "provoke")) {
    provoke();
  } else if (!strcmp(mode, "exit")) {
    return 3;
  }
  sleep(2);
  off();
  return 0;
}
