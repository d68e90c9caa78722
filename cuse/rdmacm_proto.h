/*
 * rdmacm_proto.h - the rdmacm-mux wire protocol that QEMU's pvrdma device
 * speaks (QEMU contrib/rdmacm-mux/rdmacm-mux.h, hw/rdma/rdma_backend.c):
 * pure encode / decode / validation, no I/O, so that it can be unit-tested
 * and fuzzed.  The socket and node wiring is in rdmacm_client.c,
 * rdmacm_sock.c and rdmacm_node.c.
 *
 * One message is always RDMACM_MSG_SIZE (360) bytes on x86-64, in both
 * directions, requests and answers alike.  Layout (host byte order unless
 * marked "be"; QEMU's structs, natural alignment, union ibv_gid is 8-byte
 * aligned, which puts 4 bytes of padding after err_code and at the end):
 *
 *   off  size  field
 *     0     4  hdr.msg_type   0 REQ (a request, or an incoming MAD), 1 RESP
 *     4     4  hdr.op_code    0 REG, 1 UNREG, 2 MAD
 *     8    16  hdr.sgid       union ibv_gid: subnet prefix 8..15, interface id 16..23
 *    24     4  hdr.err_code   0 OK, 1 EINVAL, 2 EEXIST, 3 EACCES, 4 ENOTFOUND
 *    28     4  (padding)
 *    32     4  umad_len       MAD bytes in umad.mad (int)
 *    36    64  umad.hdr       struct ib_user_mad (libibumad) = struct ib_user_mad_hdr:
 *    36     4    agent_id
 *    40     4    status
 *    44     4    timeout_ms
 *    48     4    retries
 *    52     4    length
 *    56     4    addr.qpn (be)
 *    60     4    addr.qkey (be)
 *    64     2    addr.lid (be)
 *    66     1    addr.sl
 *    67     1    addr.path_bits
 *    68     1    addr.grh_present
 *    69     1    addr.gid_index
 *    70     1    addr.hop_limit
 *    71     1    addr.traffic_class
 *    72    16    addr.gid
 *    88     4    addr.flow_label (be)
 *    92     2    addr.pkey_index
 *    94     6    addr.reserved
 *   100   256  umad.mad       the MAD (RDMA_MAX_PRIVATE_DATA = 256 bytes)
 *   356     4  (padding)
 *
 * Exchange (as rdmacm-mux did): the client sends REQ messages; each is
 * answered by the same message with msg_type RESP and err_code set.  MADs
 * that arrive for the client come as REQ/MAD messages (sgid = the GID the
 * MAD was steered by, umad.hdr = the receive header, umad_len = MAD bytes).
 */
#ifndef UMX_RDMACM_PROTO_H
#define UMX_RDMACM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <umx/abi.h>

enum rdmacm_msg_type { RDMACM_MSG_REQ = 0, RDMACM_MSG_RESP = 1 };
enum rdmacm_op { RDMACM_OP_REG = 0, RDMACM_OP_UNREG = 1, RDMACM_OP_MAD = 2 };
enum rdmacm_err {
	RDMACM_ERR_OK = 0,
	RDMACM_ERR_EINVAL = 1,       /* unknown op code, malformed message */
	RDMACM_ERR_EEXIST = 2,       /* REG: this client registered the GID already */
	RDMACM_ERR_EACCES = 3,       /* REG: another client (or a bound node) has it */
	RDMACM_ERR_ENOTFOUND = 4,    /* UNREG / MAD: GID not registered */
};

#define RDMACM_MAD_MAX 256           /* RDMA_MAX_PRIVATE_DATA */
#define RDMACM_MAD_HDR 24            /* the common MAD header: the least a MAD carries */

/* the wire struct: same member types and order as QEMU's RdmaCmMuxMsg */
union rdmacm_gid {
	uint8_t raw[16];
	struct {
		uint64_t subnet_prefix;  /* be */
		uint64_t interface_id;   /* be */
	} global;
};

struct rdmacm_wire_hdr {
	uint32_t msg_type;
	uint32_t op_code;
	union rdmacm_gid sgid;
	uint32_t err_code;
};

struct rdmacm_wire {
	struct rdmacm_wire_hdr hdr;
	int32_t umad_len;
	struct ib_user_mad_hdr umad_hdr;     /* = libibumad's struct ib_user_mad */
	uint8_t mad[RDMACM_MAD_MAX];
};

#define RDMACM_MSG_SIZE 360
#define RDMACM_OFF_MSG_TYPE 0
#define RDMACM_OFF_OP_CODE 4
#define RDMACM_OFF_SGID 8
#define RDMACM_OFF_ERR_CODE 24
#define RDMACM_OFF_UMAD_LEN 32
#define RDMACM_OFF_UMAD_HDR 36
#define RDMACM_OFF_MAD 100

_Static_assert(sizeof(struct rdmacm_wire) == RDMACM_MSG_SIZE, "rdmacm message size");
_Static_assert(offsetof(struct rdmacm_wire, hdr.op_code) == RDMACM_OFF_OP_CODE, "op_code");
_Static_assert(offsetof(struct rdmacm_wire, hdr.sgid) == RDMACM_OFF_SGID, "sgid");
_Static_assert(offsetof(struct rdmacm_wire, hdr.err_code) == RDMACM_OFF_ERR_CODE, "err_code");
_Static_assert(offsetof(struct rdmacm_wire, umad_len) == RDMACM_OFF_UMAD_LEN, "umad_len");
_Static_assert(offsetof(struct rdmacm_wire, umad_hdr) == RDMACM_OFF_UMAD_HDR, "umad hdr");
_Static_assert(offsetof(struct rdmacm_wire, mad) == RDMACM_OFF_MAD, "mad");
_Static_assert(sizeof(struct ib_user_mad_hdr) == 64, "struct ib_user_mad is 64 bytes");

/* decoded message: the wire struct itself (fields are plain members) */
typedef struct rdmacm_wire rdmacm_msg;

/* len must be RDMACM_MSG_SIZE: 0, else -EINVAL.  Padding is ignored. */
int rdmacm_decode(const void *buf, size_t len, rdmacm_msg *m);
/* writes RDMACM_MSG_SIZE bytes, padding zeroed */
void rdmacm_encode(const rdmacm_msg *m, void *buf);

/*
 * What to do with a decoded message a client sent:
 *   RDMACM_CHECK_CLOSE  not a request (msg_type != REQ): rdmacm-mux closed
 *                       the connection; a node write fails with EINVAL
 *   RDMACM_CHECK_ERR    answer RESP with *err (unknown op code, zero GID,
 *                       umad_len outside 24..256, a MAD that is not CM)
 *   RDMACM_CHECK_OK     valid REG / UNREG / MAD request
 */
enum rdmacm_check { RDMACM_CHECK_OK, RDMACM_CHECK_ERR, RDMACM_CHECK_CLOSE };
enum rdmacm_check rdmacm_check_request(const rdmacm_msg *m, enum rdmacm_err *err);

/* turn m into the answer to itself */
void rdmacm_make_resp(rdmacm_msg *m, enum rdmacm_err err);
/* a -errno from the core (write) as an err_code: EINVAL, EPERM/EACCES ->
 * EACCES, anything else stays -errno (rdmacm-mux put umad_send()'s negative
 * return there) */
int32_t rdmacm_err_from_errno(int neg_errno);

/*
 * An incoming MAD for a client: umad is a new-format header + MAD (what
 * umx_file_read() returns), len bytes.  0, or -EMSGSIZE when the MAD does
 * not fit (more than 256 bytes), -EINVAL when shorter than a header.
 */
int rdmacm_make_mad_msg(rdmacm_msg *m, const uint8_t sgid[16], const void *umad, size_t len);

/*
 * The umad a client's MAD request becomes: header + MAD into out (room for
 * 64 + 256 bytes); agent id, timeout (0: CM does its own retries) and the
 * GRH source gid index (the host's index of the client's GID) are set.
 * Returns the length.
 */
size_t rdmacm_make_send(const rdmacm_msg *m, uint32_t agent_id, int gid_index, uint8_t *out);

bool rdmacm_gid_is_zero(const uint8_t gid[16]);
const char *rdmacm_op_name(uint32_t op);
/* "REQ", "REP", ... of a CM MAD (at least 24 bytes) */
const char *rdmacm_cm_attr_name(const uint8_t *mad);

#endif
