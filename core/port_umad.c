/*
 * port_umad.c - the real umad port over libibumad.
 *
 * Registration and sends are plain ioctl()/write() calls on the port fd
 * from the loop thread, so the client sees the kernel's own errno.  Reads
 * happen in one reader thread (umad_recv() with a timeout), because under
 * umad2sim (the simulated fabric) the fd is a fake number that epoll
 * refuses; the thread queues packets and wakes the loop with an eventfd.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>



#include <umx/port.h>

#define READER_QUEUE_MAX 65536     /* packets waiting for the loop */
#define READER_POLL_MS 200         /* how often the reader checks for stop */

struct rx_item {
	struct rx_item *next;
	size_t len;
	uint8_t buf[];
};

struct umx_umad_port {
	struct umx_port port;
	int fd;
	int efd;
	char ca[UMAD_CA_NAME_LEN];
	int portnum;
	pthread_t reader;
	bool reader_started;
	atomic_bool stop;
	pthread_mutex_t lock;
	struct rx_item *head, *tail;
	unsigned queued;
	atomic_uint_fast64_t drops;
	bool dead;                 /* the reader saw the device go away */
};

static int umad_reg(struct umx_port *port, struct ib_user_mad_reg_req2 *req)
{
	struct umx_umad_port *p = (struct umx_umad_port *)port;

	if (ioctl(p->fd, IB_USER_MAD_REGISTER_AGENT2, req) == 0)
		return 0;
	/* kernels without AGENT2 say ENOTTY; umad2sim says EINVAL to any
	 * unknown ioctl.  Without flags the old request carries the same
	 * information (qpn included), and a real validation error repeats. */
	if ((errno != ENOTTY && errno != EINVAL) || req->flags)
		return -errno;
	struct ib_user_mad_reg_req v1;
	memset(&v1, 0, sizeof(v1));
	v1.qpn = (uint8_t)req->qpn;
	v1.mgmt_class = req->mgmt_class;
	v1.mgmt_class_version = req->mgmt_class_version;
	v1.oui[0] = (uint8_t)(req->oui >> 16);
	v1.oui[1] = (uint8_t)(req->oui >> 8);
	v1.oui[2] = (uint8_t)req->oui;
	v1.rmpp_version = req->rmpp_version;
	memcpy(v1.method_mask, req->method_mask, sizeof(v1.method_mask));
	if (ioctl(p->fd, IB_USER_MAD_REGISTER_AGENT, &v1) != 0)
		return -errno;
	req->id = v1.id;
	return 0;
}

static int umad_unreg(struct umx_port *port, uint32_t id)
{
	struct umx_umad_port *p = (struct umx_umad_port *)port;
	return ioctl(p->fd, IB_USER_MAD_UNREGISTER_AGENT, &id) == 0 ? 0 : -errno;
}

static int umad_write(struct umx_port *port, const void *umad, size_t len)
{
	struct umx_umad_port *p = (struct umx_umad_port *)port;
	ssize_t n = write(p->fd, umad, len);

	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO;
	return -errno;
}

static const struct umx_port_ops umad_ops = { umad_reg, umad_unreg, umad_write };

static void push(struct umx_umad_port *p, const void *buf, size_t len)
{
	struct rx_item *it = malloc(sizeof(*it) + len);

	if (!it) {
		atomic_fetch_add(&p->drops, 1);
		return;
	}
	it->next = NULL;
	it->len = len;
	if (len)
		memcpy(it->buf, buf, len);
	pthread_mutex_lock(&p->lock);
	if (p->queued >= READER_QUEUE_MAX && len) {   /* the port-down marker always fits */
		pthread_mutex_unlock(&p->lock);
		free(it);
		atomic_fetch_add(&p->drops, 1);
		return;
	}
	bool was_empty = !p->head;
	if (p->tail)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	p->queued++;
	pthread_mutex_unlock(&p->lock);
	if (was_empty) {
		uint64_t one = 1;
		/* fails only when the counter is saturated: the loop is awake */
		if (write(p->efd, &one, sizeof(one)) < 0) {
		}
	}
}

static bool device_gone(struct umx_umad_port *p)
{
	umad_port_t info;
	if (umad_get_port(p->ca, p->portnum, &info) < 0)
		return true;
	umad_release_port(&info);
	return false;
}

static void *reader_main(void *arg)
{
	struct umx_umad_port *p = arg;
	size_t cap = 4096;
	uint8_t *buf = malloc(umad_size() + cap);

	while (buf && !atomic_load(&p->stop)) {
		int len = (int)cap;
		int rc = umad_recv(p->fd, buf, &len, READER_POLL_MS);
		if (rc >= 0) {
			push(p, buf, umad_size() + (size_t)len);
		} else if (rc == -ENOSPC && len > (int)cap) {
			/* an RMPP message larger than the buffer stays queued in
			 * the kernel (ib_umad_read requeues it): grow and re-read */
			uint8_t *nb = realloc(buf, umad_size() + (size_t)len);
			if (!nb)
				break;
			buf = nb;
			cap = (size_t)len;
		} else if ((rc == -EIO || rc == -ENODEV || rc == -ENXIO || rc == -EBADF) && device_gone(p)) {
			/* the device went away (ib_umad_kill_port makes reads fail
			 * with EIO): tell the loop with an empty item and stop.
			 * umad_recv() also says EIO when poll() fails (EINTR), so
			 * the device itself must be gone too. */
			push(p, NULL, 0);
			break;
		} else if (rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EINTR && rc != -EWOULDBLOCK) {
			usleep(100000);     /* transient: do not spin */
		}
	}
	free(buf);
	return NULL;
}

struct umx_umad_port *umx_umad_port_open(const char *ca, int port, char *err, size_t errlen)
{
	struct umx_umad_port *p = calloc(1, sizeof(*p));
	umad_port_t info;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->port.ops = &umad_ops;
	p->fd = -1;
	p->efd = -1;
	pthread_mutex_init(&p->lock, NULL);
	if (umad_init() < 0) {
		snprintf(err, errlen, "umad_init failed (is ib_umad loaded?)");
		goto fail;
	}
	p->fd = umad_open_port(ca, port);
	if (p->fd < 0) {
		snprintf(err, errlen, "umad_open_port(%s, %d): %s", ca ? ca : "(default)", port,
			 strerror(-p->fd));
		p->fd = -1;
		goto fail;
	}
	if (umad_get_port(ca, port, &info) == 0) {
		snprintf(p->ca, sizeof(p->ca), "%s", info.ca_name);
		p->portnum = info.portnum;
		umad_release_port(&info);
	} else {
		snprintf(p->ca, sizeof(p->ca), "%s", ca ? ca : "?");
		p->portnum = port;
	}
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&p->reader, NULL, reader_main, p) != 0) {
		snprintf(err, errlen, "cannot start the umad reader thread");
		goto fail;
	}
	p->reader_started = true;
	return p;
fail:
	umx_umad_port_close(p);
	return NULL;
}

/* after the device came back: a new fd on the same ca/port, a new reader;
 * the object, its eventfd and the loop's registration of it stay */
int umx_umad_port_reopen(struct umx_umad_port *p, char *err, size_t errlen)
{
	if (!p->dead)
		return 0;
	if (p->reader_started) {
		atomic_store(&p->stop, true);
		pthread_join(p->reader, NULL);
		p->reader_started = false;
	}
	if (p->fd >= 0) {
		umad_close_port(p->fd);
		p->fd = -1;
	}
	int fd = umad_open_port(p->ca, p->portnum);
	if (fd < 0) {
		snprintf(err, errlen, "umad_open_port(%s, %d): %s", p->ca, p->portnum, strerror(-fd));
		return -1;
	}
	p->fd = fd;
	pthread_mutex_lock(&p->lock);
	while (p->head) {
		struct rx_item *it = p->head;
		p->head = it->next;
		free(it);
	}
	p->tail = NULL;
	p->queued = 0;
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->stop, false);
	if (pthread_create(&p->reader, NULL, reader_main, p) != 0) {
		snprintf(err, errlen, "cannot start the umad reader thread");
		return -1;
	}
	p->reader_started = true;
	p->dead = false;
	return 0;
}

struct umx_port *umx_umad_port_base(struct umx_umad_port *p) { return &p->port; }
int umx_umad_port_event_fd(const struct umx_umad_port *p) { return p->efd; }
const char *umx_umad_port_ca(const struct umx_umad_port *p) { return p->ca; }
int umx_umad_port_num(const struct umx_umad_port *p) { return p->portnum; }
uint64_t umx_umad_port_reader_drops(const struct umx_umad_port *p) { return atomic_load(&p->drops); }
bool umx_umad_port_dead(const struct umx_umad_port *p) { return p->dead; }

unsigned umx_umad_port_dispatch(struct umx_umad_port *p, struct umx_router *r)
{
	uint64_t v;
	unsigned n = 0;

	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		struct rx_item *it = p->head;
		if (it) {
			p->head = it->next;
			if (!p->head)
				p->tail = NULL;
			p->queued--;
		}
		pthread_mutex_unlock(&p->lock);
		if (!it)
			break;
		if (!it->len) {
			p->dead = true;
			umx_router_port_down(r);
		} else if (!p->dead) {
			umx_router_input(r, it->buf, it->len);
		}
		free(it);
		n++;
	}
	return n;
}

void umx_umad_port_close(struct umx_umad_port *p)
{
	if (!p)
		return;
	if (p->reader_started) {
		atomic_store(&p->stop, true);
		pthread_join(p->reader, NULL);
	}
	while (p->head) {
		struct rx_item *it = p->head;
		p->head = it->next;
		free(it);
	}
	if (p->fd >= 0)
		umad_close_port(p->fd);
	if (p->efd >= 0)
		close(p->efd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
