/* stream_io.h - FOPEN_STREAM patch for FUSE-mode OPEN replies (stream_io.c) */
#ifndef UMX_CUSE_STREAM_IO_H
#define UMX_CUSE_STREAM_IO_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

extern bool mux_stream_patch_next;
ssize_t mux_stream_writev(int fd, struct iovec *iov, int count, void *userdata);
ssize_t mux_stream_read(int fd, void *buf, size_t len, void *userdata);

#endif
