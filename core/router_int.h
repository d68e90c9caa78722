/* router_int.h - calls from the virtual files into the router */
#ifndef UMX_ROUTER_INT_H
#define UMX_ROUTER_INT_H

#include "core_int.h"

/* send hdr + mad (madlen bytes) for agent va; returns ret_len or -errno */
ssize_t umx_router_send(struct umx_router *r, struct umx_vagent *va,
			const struct ib_user_mad_hdr *hdr, const uint8_t *mad,
			size_t madlen, size_t ret_len);

#endif
