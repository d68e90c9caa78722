/*
 * umx/mad.h - reading and writing the MAD common header fields the router
 * needs (types and constants come from libibumad's <infiniband/umad_types.h>).
 */
#ifndef UMX_MAD_H
#define UMX_MAD_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <umx/abi.h>

#define UMX_MAD_SIZE 256            /* one IB MAD segment (sizeof(struct ib_mad)) */
#define UMX_MAD_HDR 24              /* IB_MGMT_MAD_HDR */
#define UMX_RMPP_HDR 36             /* IB_MGMT_RMPP_HDR */
#define UMX_MAX_MGMT_VERSION 0x83   /* MAX_MGMT_VERSION in mad_priv.h (0x83 since OPA) */
#define UMX_MAX_MGMT_CLASS 80       /* MAX_MGMT_CLASS in mad_priv.h */
#define UMX_VENDOR_OUI_OFF 37       /* umad_vendor_packet.oui */

static inline const struct umad_hdr *umx_mad_hdr(const void *mad)
{
	return (const struct umad_hdr *)mad;
}

static inline uint64_t umx_mad_tid(const void *mad)
{
	uint64_t t;
	memcpy(&t, (const uint8_t *)mad + 8, 8);
	return be64toh(t);
}

static inline void umx_mad_set_tid(void *mad, uint64_t tid)
{
	uint64_t t = htobe64(tid);
	memcpy((uint8_t *)mad + 8, &t, 8);
}

static inline bool umx_is_vendor_range2(uint8_t mgmt_class)
{
	return mgmt_class >= UMAD_CLASS_VENDOR_RANGE2_START &&
	       mgmt_class <= UMAD_CLASS_VENDOR_RANGE2_END;
}

/* mirrors ib_response_mad() (include/rdma/ib_mad.h) */
static inline bool umx_is_response(const void *mad)
{
	const uint8_t *m = mad;
	uint32_t attr_mod;
	memcpy(&attr_mod, m + 20, 4);
	return (m[3] & UMAD_METHOD_RESP_MASK) || m[3] == UMAD_METHOD_TRAP_REPRESS ||
	       (m[1] == UMAD_CLASS_BM && (be32toh(attr_mod) & 0x00800000));
}

/* mirrors ib_is_mad_class_rmpp() */
static inline bool umx_is_rmpp_class(uint8_t c)
{
	return c == UMAD_CLASS_SUBN_ADM || c == UMAD_CLASS_DEVICE_MGMT ||
	       (c >= UMAD_CLASS_BOOT_MGMT && c <= UMAD_CLASS_BIS) || umx_is_vendor_range2(c);
}

static inline uint32_t umx_mad_oui(const void *mad)
{
	const uint8_t *m = mad;
	return (uint32_t)m[UMX_VENDOR_OUI_OFF] << 16 | (uint32_t)m[UMX_VENDOR_OUI_OFF + 1] << 8 |
	       m[UMX_VENDOR_OUI_OFF + 2];
}

#endif
