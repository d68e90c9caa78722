/*
 * unix_sock.c - the checks every listening unix socket of the daemon makes
 * before bind(): the path fits, and whatever is there is a stale socket of a
 * dead daemon (removed), not a live one or another file (refused).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "front.h"

int mux_unix_prepare(const char *path, const char *what, struct sockaddr_un *sa, char *err,
		     size_t errlen)
{
	struct stat st;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		snprintf(err, errlen, "%s path too long: %s", what, path);
		return -1;
	}
	strcpy(sa->sun_path, path);
	if (lstat(path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool live = probe >= 0 && S_ISSOCK(st.st_mode) &&
			    connect(probe, (struct sockaddr *)sa, sizeof(*sa)) == 0;
		if (probe >= 0)
			close(probe);
		if (live || !S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s %s: %s", what, path,
				 live ? "another daemon is listening there" : "exists and is not a socket");
			return -1;
		}
		unlink(path);
	}
	return 0;
}
