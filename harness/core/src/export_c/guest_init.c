// SPDX-License-Identifier: GPL-2.0-only
/*
 * /init of a throwaway guest that runs one shmemfuzz reproducer, as the
 * gma500_mock selftest boots (kernels/gma500_mock/selftest): mount the pseudo
 * filesystems, load the modules in /modules in name order (those of the swap
 * disks and drm that are not built in, then gma500_mock.ko), wait for the swap
 * disks, run /repro, print its exit status and power off.
 *
 *   gcc -static -O2 -o init guest_init.c
 *   initramfs: /init, /repro, /dev/console, /modules/NN-name.ko (or .ko.xz)
 *   qemu-system-x86_64 -machine pc,max-ram-below-4g=1G -m 2G -smp 1 \
 *     -nodefaults -display none -no-reboot -serial stdio \
 *     -kernel bzImage -initrd initrd.cpio \
 *     -drive file=swap0.img,format=raw,if=virtio \
 *     -drive file=swap1.img,format=raw,if=virtio \
 *     -append "console=ttyS0 panic=-1 rdinit=/init rootfstype=ramfs"
 *
 * The last line it prints is "REPRO-EXIT: <status>": the reproducer's exit
 * status, or -1 if it did not run or died of a signal (a kernel oops kills it).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

static void power_off(int status)
{
	printf("REPRO-EXIT: %d\n", status);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	exit(0);
}

static void load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int flags = strstr(path, ".xz") || strstr(path, ".zst") ? MODULE_INIT_COMPRESSED_FILE : 0;

	if (fd < 0 || (syscall(SYS_finit_module, fd, "", flags) && errno != EEXIST)) {
		printf("init: loading %s: %s\n", path, strerror(errno));
		power_off(-1);
	}
	close(fd);
}

static void wait_for(const char *path, int tenths)
{
	while (access(path, F_OK) && tenths-- > 0)
		usleep(100000);
}

int main(void)
{
	struct dirent **names;
	char path[300];
	int i, n, status;
	pid_t pid;

	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	mkdir("/run", 0755);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL);
	if (fcntl(STDOUT_FILENO, F_GETFD) < 0) {
		int fd = open("/dev/console", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	n = scandir("/modules", &names, NULL, alphasort);
	for (i = 0; i < n; i++) {
		if (names[i]->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/modules/%s", names[i]->d_name);
		load_module(path);
	}
	wait_for("/dev/vda", 300);
	wait_for("/dev/vdb", 20);
	printf("init: running /repro\n");
	pid = fork();
	if (pid == 0) {
		execl("/repro", "repro", (char *)NULL);
		printf("init: exec /repro: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		power_off(-1);
	if (WIFSIGNALED(status)) {
		printf("init: /repro died of signal %d\n", WTERMSIG(status));
		power_off(-1);
	}
	power_off(WEXITSTATUS(status));
	return 0;
}
