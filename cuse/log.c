/*
 * log.c - stderr in the foreground (and until the daemon detached),
 * syslog otherwise.  One line per message, no trailing newline in fmt.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>

#include "log.h"

static const char *log_ident = "umad-mux";
static bool log_stderr = true, log_syslog;
static int log_level;

void log_init(const char *ident, bool to_stderr, int verbose)
{
	log_ident = ident;
	log_stderr = to_stderr;
	log_level = verbose;
	log_syslog = !to_stderr;
	if (log_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_to_syslog(void)
{
	if (!log_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = true;
	log_stderr = false;
}

int log_verbose(void) { return log_level; }

static void vlog(int pri, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vlog(int pri, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_stderr)
		fprintf(stderr, "%s: %s\n", log_ident, msg);
	if (log_syslog)
		syslog(pri, "%s", msg);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;
	if (log_level < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(status);
}
