/*
 * stream_io.c - FUSE mode: mark opened files FOPEN_STREAM.
 *
 * A FUSE regular file gets FMODE_ATOMIC_POS, so read() and write() on one
 * fd shared by threads serialize on file->f_pos_lock: a read parked in the
 * daemon would block a write from another thread on the same fd forever.
 * FOPEN_STREAM in the OPEN reply makes the kernel call stream_open(), which
 * clears that mode.  libfuse 3.14 has no fuse_file_info bit for it, so the
 * session's writes go through fuse_session_custom_io() and the OPEN reply is
 * patched.  The loop is single-threaded and fuse_reply_open() writes the
 * reply synchronously, so the FUSE-mode open handler just arms
 * mux_stream_patch_next around that call: no opcode/unique tracking needed.
 * (CUSE character devices never have FMODE_ATOMIC_POS.)
 */
#include <linux/fuse.h>
#include <stdbool.h>
#include <sys/uio.h>
#include <unistd.h>

#include "stream_io.h"

bool mux_stream_patch_next;

ssize_t mux_stream_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (mux_stream_patch_next && count >= 2 &&
	    iov[0].iov_len >= sizeof(struct fuse_out_header) &&
	    iov[1].iov_len == sizeof(struct fuse_open_out)) {
		const struct fuse_out_header *oh = iov[0].iov_base;
		if (oh->error == 0)
			((struct fuse_open_out *)iov[1].iov_base)->open_flags |= FOPEN_STREAM;
	}
	mux_stream_patch_next = false;
	return writev(fd, iov, count);
}

ssize_t mux_stream_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}
