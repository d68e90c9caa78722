/*
 * fault_client.c - a umad client for the port-fault and churn tests.
 *   fault_client block DEV           register, then a blocking read; prints
 *                                    what read/poll/write/register return after
 *   fault_client probe DEV GID [N]   send a Get of unowned class 0x0d to GID and
 *                                    wait for the kernel's auto-reply (N tries)
 *   fault_client open DEV            prints open()'s errno
 *   fault_client churn PREFIX NODES CYCLES GID RESPONDER_CLASS
 *                                    open/register/send/close cycles across
 *                                    nodes 1..NODES-1 with requests in flight to
 *                                    a late responder on node 0 (a thread)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <umx/abi.h>
#include <umx/mad.h>

#define HDR sizeof(struct ib_user_mad_hdr)

static uint8_t gid[16];

static int reg(int fd, uint8_t cls, uint64_t mask, uint32_t *id)
{
	struct ib_user_mad_reg_req2 q;
	memset(&q, 0, sizeof(q));
	q.qpn = 1;
	q.mgmt_class = cls;
	q.mgmt_class_version = cls ? 1 : 0;
	q.method_mask[0] = mask;
	int r = ioctl(fd, IB_USER_MAD_REGISTER_AGENT2, &q);
	*id = q.id;
	return r ? -errno : 0;
}

static void build(uint8_t *buf, uint32_t agent, uint8_t cls, uint8_t method, uint64_t tid, uint32_t tmo)
{
	struct ib_user_mad_hdr h;
	memset(buf, 0, HDR + 256);
	memset(&h, 0, sizeof(h));
	h.id = agent;
	h.timeout_ms = tmo;
	h.qpn = htonl(1);
	h.qkey = htonl(UMAD_QKEY);
	h.grh_present = 1;
	h.hop_limit = 64;
	memcpy(h.gid, gid, 16);
	memcpy(buf, &h, sizeof(h));
	buf[HDR] = 1;
	buf[HDR + 1] = cls;
	buf[HDR + 2] = 1;
	buf[HDR + 3] = method;
	umx_mad_set_tid(buf + HDR, tid);
}

static const char *en(int e) { return e == EIO ? "EIO" : e == EPIPE ? "EPIPE" : e == ENXIO ? "ENXIO" : e == EINVAL ? "EINVAL" : e ? strerror(e) : "0"; }

static int probe(const char *dev, int tries)
{
	for (int t = 0; t < tries; t++, sleep(1)) {
		int fd = open(dev, O_RDWR | O_NONBLOCK);
		if (fd < 0) {
			printf("probe: open %s\n", en(errno));
			continue;
		}
		uint32_t id;
		uint8_t buf[HDR + 256];
		ioctl(fd, IB_USER_MAD_ENABLE_PKEY);
		if (reg(fd, 0, 0, &id) < 0 ||
		    (build(buf, id, 0x0d, UMAD_METHOD_GET, 0x77, 1000), write(fd, buf, sizeof(buf)) < 0)) {
			printf("probe: register/write %s\n", en(errno));
			close(fd);
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 3000) == 1 && read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) &&
		    buf[HDR + 3] == UMAD_METHOD_GET_RESP && (uint32_t)umx_mad_tid(buf + HDR) == 0x77) {
			printf("probe: ok status=0x%02x%02x\n", buf[HDR + 4], buf[HDR + 5]);
			close(fd);
			return 0;
		}
		printf("probe: no answer\n");
		close(fd);
	}
	return 1;
}

static int block(const char *dev)
{
	int fd = open(dev, O_RDWR);
	uint32_t id;
	uint8_t buf[HDR + 256];
	if (fd < 0 || ioctl(fd, IB_USER_MAD_ENABLE_PKEY) || reg(fd, 0, 0, &id)) {
		printf("block: setup failed %s\n", en(errno));
		return 1;
	}
	printf("registered\n");
	fflush(stdout);
	ssize_t n = read(fd, buf, sizeof(buf));
	printf("read: %zd %s\n", n, en(n < 0 ? errno : 0));
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	poll(&p, 1, 0);
	printf("poll: 0x%x\n", p.revents);
	build(buf, id, 0x0d, UMAD_METHOD_GET, 1, 0);
	n = write(fd, buf, sizeof(buf));
	printf("write: %s\n", en(n < 0 ? errno : 0));
	printf("register: %s\n", en(-reg(fd, 0, 0, &id)));
	close(fd);
	return 0;
}

/* churn: a responder on node 0 answers Gets of cls late (20 ms) */
static const char *prefix;
static int resp_fd;
static volatile int stop;
static void *responder(void *arg)
{
	uint8_t buf[HDR + 256];
	(void)arg;
	while (!stop) {
		struct pollfd p = { .fd = resp_fd, .events = POLLIN };
		if (poll(&p, 1, 100) != 1)
			continue;
		if (read(resp_fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			continue;
		usleep(20000);
		buf[HDR + 3] = UMAD_METHOD_GET_RESP;
		struct ib_user_mad_hdr *h = (struct ib_user_mad_hdr *)buf;
		h->timeout_ms = 0;
		h->retries = 0;
		if (write(resp_fd, buf, sizeof(buf)) < 0)
			perror("responder write");
	}
	return NULL;
}

static int churn(int nodes, int cycles, uint8_t cls)
{
	char path[256];
	uint32_t rid;
	snprintf(path, sizeof(path), "/dev/%s-0", prefix);
	resp_fd = open(path, O_RDWR | O_NONBLOCK);
	if (resp_fd < 0 || ioctl(resp_fd, IB_USER_MAD_ENABLE_PKEY) ||
	    reg(resp_fd, cls, 1ull << UMAD_METHOD_GET, &rid)) {
		printf("churn: responder setup failed %s\n", en(errno));
		return 1;
	}
	pthread_t t;
	pthread_create(&t, NULL, responder, NULL);
	int answered = 0, in_flight_closed = 0, errors = 0;
	for (int c = 0; c < cycles; c++) {
		snprintf(path, sizeof(path), "/dev/%s-%d", prefix, 1 + c % (nodes - 1));
		int fd = open(path, O_RDWR | O_NONBLOCK);
		uint32_t id;
		uint8_t buf[HDR + 256];
		if (fd < 0 || ioctl(fd, IB_USER_MAD_ENABLE_PKEY) || reg(fd, 0, 0, &id)) {
			errors++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		build(buf, id, cls, UMAD_METHOD_GET, (uint64_t)c, 500);
		if (write(fd, buf, sizeof(buf)) < 0) {
			errors++;
		} else if (c % 10 == 0) {
			/* every tenth waits for its late answer */
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 2000) == 1 && read(fd, buf, sizeof(buf)) > 0 &&
			    (uint32_t)umx_mad_tid(buf + HDR) == (uint32_t)c)
				answered++;
			else
				errors++;
		} else {
			in_flight_closed++;          /* closed with the request in flight */
		}
		close(fd);
	}
	usleep(300000);
	stop = 1;
	pthread_join(t, NULL);
	close(resp_fd);
	printf("churn: cycles %d answered %d closed_in_flight %d errors %d\n", cycles, answered,
	       in_flight_closed, errors);
	return errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "block"))
		return block(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "probe")) {
		inet_pton(AF_INET6, argv[3], gid);
		return probe(argv[2], argc > 4 ? atoi(argv[4]) : 1);
	}
	if (argc >= 3 && !strcmp(argv[1], "open")) {
		int fd = open(argv[2], O_RDWR);
		printf("open: %s\n", en(fd < 0 ? errno : 0));
		return 0;
	}
	if (argc >= 7 && !strcmp(argv[1], "churn")) {
		prefix = argv[2];
		inet_pton(AF_INET6, argv[5], gid);
		return churn(atoi(argv[3]), atoi(argv[4]), (uint8_t)strtoul(argv[6], NULL, 0));
	}
	fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
	return 2;
}
