/*
 * log.h - the daemon's logging (OpenBSD log.c style): stderr in the
 * foreground, syslog otherwise.
 */
#ifndef UMX_CUSE_LOG_H
#define UMX_CUSE_LOG_H

#include <stdbool.h>

void log_init(const char *ident, bool to_stderr, int verbose);
/* switch to syslog only (after the daemon detached) */
void log_to_syslog(void);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* logs and exits with status 1 */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* logs and exits with the given status */
void fatalx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
int log_verbose(void);

#endif
