/*
 * daemon.c - detaching, pid files, stale sockets, privilege drop, descriptor limits.
 */
#include "daemon.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bool parse_id(const char *s, unsigned long *out)
{
	char *end;
	if (!*s)
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !*end && !errno && *out < (unsigned long)(uid_t)-1;
}

int daemon_lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	char user[256], *group = NULL;
	unsigned long id;

	if (snprintf(user, sizeof(user), "%s", spec) >= (int)sizeof(user) || !user[0]) {
		snprintf(err, errlen, "bad user \"%s\"", spec);
		return -1;
	}
	group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	struct passwd *pw = getpwnam(user);
	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	} else if (parse_id(user, &id)) {
		*uid = (uid_t)id;
		*gid = (gid_t)id;
	} else {
		snprintf(err, errlen, "unknown user \"%s\"", user);
		return -1;
	}
	if (group) {
		struct group *gr = getgrnam(group);
		if (gr)
			*gid = gr->gr_gid;
		else if (parse_id(group, &id))
			*gid = (gid_t)id;
		else {
			snprintf(err, errlen, "unknown group \"%s\"", group);
			return -1;
		}
	}
	return 0;
}

int daemon_check_root(const char *user_spec, char *err, size_t errlen)
{
	if (geteuid() != 0 || user_spec)
		return 0;
	snprintf(err, errlen,
	         "refusing to run as root: give -u USER[:GROUP] to drop privileges "
	         "(or -u root to run as root deliberately)");
	return -1;
}

int daemon_drop_privileges(const char *spec, char *err, size_t errlen)
{
	uid_t uid;
	gid_t gid;

	if (daemon_lookup_user(spec, &uid, &gid, err, errlen) < 0)
		return -1;
	if (geteuid() != 0) {
		if (geteuid() == uid && getegid() == gid)
			return 0;
		snprintf(err, errlen, "cannot switch to user %s: not running as root", spec);
		return -1;
	}
	if (uid == 0)
		return 0; /* explicitly asked to stay root */
	struct passwd *pw = getpwuid(uid);
	if (pw ? initgroups(pw->pw_name, gid) < 0 : setgroups(1, &gid) < 0) {
		snprintf(err, errlen, "setting supplementary groups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		snprintf(err, errlen, "setgid(%u): %s", (unsigned)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "setuid(%u): %s", (unsigned)uid, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() != uid || getegid() != gid) {
		snprintf(err, errlen, "privileges were not dropped completely");
		return -1;
	}
	return 0;
}

int daemon_detach(char *err, size_t errlen)
{
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	if (setsid() < 0) {
		snprintf(err, errlen, "setsid: %s", strerror(errno));
		return -1;
	}
	if (chdir("/") < 0) {
		snprintf(err, errlen, "chdir /: %s", strerror(errno));
		return -1;
	}
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		return -1;
	}
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	return 0;
}

int daemon_write_pidfile(const char *path, char *err, size_t errlen)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "pid file name too long");
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n || close(fd) < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

void daemon_remove_pidfile(const char *path)
{
	if (path)
		unlink(path);
}

int daemon_remove_stale_socket(const char *path, char *err, size_t errlen)
{
	struct stat st;
	struct sockaddr_un sun;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket%s: not removing it", path,
		         S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
		return -1;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "%s is in use: another instance is running", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "removing stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

rlim_t daemon_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1048576 : rl.rlim_max;
		struct rlimit n = {want, rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &n) == 0)
			rl.rlim_cur = want;
	}
	return rl.rlim_cur;
}

unsigned daemon_fd_reserve(size_t nservers)
{
	if (nservers == 0)
		nservers = 3;
	if (nservers > 64)
		nservers = 64; /* bounded by the configuration anyway */
	return 4 * (unsigned)nservers + DAEMON_FD_SLACK;
}

int daemon_fds_open(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
}

void daemon_ignore_signals(void)
{
	static const int sigs[] = {SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_IGN);
}
