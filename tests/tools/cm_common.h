/*
 * cm_common.h - CM (class 0x07) MADs for the test tools (rdmacm_client.c,
 * cm_peer.c): build and parse the messages of a connection (REQ, REP, RTU,
 * DREQ, DREP), raw umad files (a mux node in umad mode or
 * /dev/infiniband/umadN).  Offsets: IBTA vol 1 ch. 12 / the kernel's
 * cm_msgs.h, inside the MAD after the 24-byte common header.
 */
#ifndef CM_COMMON_H
#define CM_COMMON_H

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <umx/abi.h>

#define CM_CLASS 0x07
#define CM_VERSION 2
#define CM_SEND 0x03
#define A_REQ 0x0010
#define A_REJ 0x0012
#define A_REP 0x0013
#define A_RTU 0x0014
#define A_DREQ 0x0015
#define A_DREP 0x0016
#define MAD_SZ 256
#define UHDR ((int)sizeof(struct ib_user_mad_hdr))
#define D 24                      /* CM data after the MAD header */
#define REQ_LOCAL_GID (D + 56)    /* primary local port GID */
#define REQ_REMOTE_GID (D + 72)   /* primary remote port GID */

static inline void cm_put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline uint32_t cm_get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }

struct cm_msg {                   /* a parsed CM MAD */
	uint16_t attr;
	uint32_t local, remote;       /* comm ids at data 0 and 4 */
	uint64_t tid;
	uint8_t src_gid[16];          /* hdr.gid of a received MAD: whom to answer */
	int gid_index;                /* hdr.gid_index: our GID it arrived on */
	uint8_t req_remote_gid[16];   /* REQ: the primary remote port GID */
};

static inline const char *cm_attr_name(uint16_t a)
{
	switch (a) {
	case A_REQ: return "REQ";
	case A_REJ: return "REJ";
	case A_REP: return "REP";
	case A_RTU: return "RTU";
	case A_DREQ: return "DREQ";
	case A_DREP: return "DREP";
	default: return "?";
	}
}

/* a CM MAD (256 bytes) */
static inline void cm_build(uint8_t *mad, uint16_t attr, uint32_t local, uint32_t remote, uint64_t tid,
			    const uint8_t *local_gid, const uint8_t *remote_gid)
{
	memset(mad, 0, MAD_SZ);
	mad[0] = 1;
	mad[1] = CM_CLASS;
	mad[2] = CM_VERSION;
	mad[3] = CM_SEND;
	uint64_t be = htobe64(tid);
	memcpy(mad + 8, &be, 8);
	mad[16] = (uint8_t)(attr >> 8);
	mad[17] = (uint8_t)attr;
	cm_put32(mad + D, local);
	if (attr == A_REQ) {
		cm_put32(mad + D + 32, 0x123456 << 8);     /* local QPN */
		if (local_gid)
			memcpy(mad + REQ_LOCAL_GID, local_gid, 16);
		if (remote_gid)
			memcpy(mad + REQ_REMOTE_GID, remote_gid, 16);
	} else {
		cm_put32(mad + D + 4, remote);
	}
}

static inline void cm_parse(const uint8_t *hdr_bytes, const uint8_t *mad, struct cm_msg *m)
{
	struct ib_user_mad_hdr h;
	uint64_t be;

	memcpy(&h, hdr_bytes, sizeof(h));
	memset(m, 0, sizeof(*m));
	m->attr = (uint16_t)(mad[16] << 8 | mad[17]);
	m->local = cm_get32(mad + D);
	m->remote = m->attr == A_REQ ? 0 : cm_get32(mad + D + 4);
	memcpy(&be, mad + 8, 8);
	m->tid = be64toh(be);
	memcpy(m->src_gid, h.gid, 16);
	m->gid_index = h.grh_present ? h.gid_index : -1;
	if (m->attr == A_REQ)
		memcpy(m->req_remote_gid, mad + REQ_REMOTE_GID, 16);
}

/* the umad header of a send to gid (RoCE: GRH, LID 0) */
static inline void cm_send_hdr(struct ib_user_mad_hdr *h, uint32_t agent, const uint8_t *dgid, int gid_index)
{
	memset(h, 0, sizeof(*h));
	h->id = agent;
	h->qpn = htonl(1);
	h->qkey = htonl(0x80010000);
	h->grh_present = 1;
	h->gid_index = (uint8_t)gid_index;
	h->hop_limit = 64;
	memcpy(h->gid, dgid, 16);
}

/* a umad file with a CM agent (class 7 version 2, method Send); -1 + message on error */
static inline int cm_umad_open(const char *path, uint32_t *agent)
{
	int fd = open(path, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (ioctl(fd, IB_USER_MAD_ENABLE_PKEY) != 0) {
		fprintf(stderr, "%s: ENABLE_PKEY: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	struct ib_user_mad_reg_req2 r;
	memset(&r, 0, sizeof(r));
	r.qpn = 1;
	r.mgmt_class = CM_CLASS;
	r.mgmt_class_version = CM_VERSION;
	r.method_mask[0] = 1ull << CM_SEND;
	if (ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &r) != 0) {
		fprintf(stderr, "%s: REGISTER_AGENT2 (CM): %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	*agent = r.id;
	return fd;
}

static inline int cm_umad_send(int fd, uint32_t agent, const uint8_t *dgid, int gid_index, const uint8_t *mad)
{
	uint8_t b[UHDR + MAD_SZ];
	cm_send_hdr((struct ib_user_mad_hdr *)b, agent, dgid, gid_index);
	memcpy(b + UHDR, mad, MAD_SZ);
	return write(fd, b, sizeof(b)) == (ssize_t)sizeof(b) ? 0 : -errno;
}

/* next CM MAD within ms: 1, 0 on timeout, -1 on error */
static inline int cm_umad_recv(int fd, struct cm_msg *m, int ms)
{
	uint8_t b[UHDR + 4096];
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, ms) != 1)
		return 0;
	ssize_t n = read(fd, b, sizeof(b));
	if (n < UHDR + 24)
		return -1;
	cm_parse(b, b + UHDR, m);
	return 1;
}

static inline const char *gstr(const uint8_t *g, char *buf)
{
	return inet_ntop(AF_INET6, g, buf, INET6_ADDRSTRLEN) ? buf : "?";
}

static inline int parse_gid(const char *s, uint8_t *g)
{
	if (inet_pton(AF_INET6, s, g) != 1) {
		fprintf(stderr, "bad GID '%s'\n", s);
		return -1;
	}
	return 0;
}

static inline long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

#endif
