/*
 * umx/port.h - the two port backends: the real umad port over libibumad,
 * and an in-memory fake port with the kernel's registration rules, for
 * unit tests and benchmarks of core/.
 */
#ifndef UMX_PORT_H
#define UMX_PORT_H

#include <umx/core.h>

/* ---- real port -------------------------------------------------------- */

struct umx_umad_port;

/*
 * Opens ca/port (NULL/0: libibumad's default) with umad_open_port() and
 * starts the reader thread, which reads with umad_recv() and hands packets
 * to the loop (it must work under umad2sim, whose fd cannot be polled by
 * epoll).  On failure returns NULL and writes a message to err.
 */
struct umx_umad_port *umx_umad_port_open(const char *ca, int port, char *err, size_t errlen);
struct umx_port *umx_umad_port_base(struct umx_umad_port *p);
/* readable when packets wait: the loop then calls umx_umad_port_dispatch() */
int umx_umad_port_event_fd(const struct umx_umad_port *p);
/* feeds every waiting packet to umx_router_input(); returns how many.  When
 * the reader saw the device go away it calls umx_router_port_down() and the
 * port is dead: close it and open it again (umx_umad_port_open) until that
 * works, then umx_router_port_up() */
unsigned umx_umad_port_dispatch(struct umx_umad_port *p, struct umx_router *r);
const char *umx_umad_port_ca(const struct umx_umad_port *p);
int umx_umad_port_num(const struct umx_umad_port *p);
uint64_t umx_umad_port_reader_drops(const struct umx_umad_port *p);
bool umx_umad_port_dead(const struct umx_umad_port *p);
/* a dead port: open the same ca/port again (0), or -1 with a message */
int umx_umad_port_reopen(struct umx_umad_port *p, char *err, size_t errlen);
void umx_umad_port_close(struct umx_umad_port *p);

/* ---- fake port ---------------------------------------------------------- */

#define UMX_FAKE_AGENTS 64
#define UMX_FAKE_SENT 64

struct umx_fake_agent {
	bool used;
	struct ib_user_mad_reg_req2 req;
};

struct umx_fake_port {
	struct umx_port port;
	bool no_qp0;               /* like RoCE: QP0 agents fail with EPROTONOSUPPORT */
	int fail_send;             /* next sends fail with this -errno (0: succeed) */
	struct umx_fake_agent agent[UMX_FAKE_AGENTS];
	unsigned live, regs, unregs;
	/* ring of the last sends */
	struct { size_t len; uint8_t buf[sizeof(struct ib_user_mad_hdr) + 256]; } sent[UMX_FAKE_SENT];
	unsigned nsent;            /* total sends ever */
};

void umx_fake_port_init(struct umx_fake_port *p);
/* the i-th send (0 = first); NULL if it fell out of the ring */
const void *umx_fake_port_sent(const struct umx_fake_port *p, unsigned i, size_t *len);

#endif
