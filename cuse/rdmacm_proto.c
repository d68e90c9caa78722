/*
 * rdmacm_proto.c - encode / decode / validation of rdmacm-mux messages
 * (layout and rules in rdmacm_proto.h).  No I/O, no global state.
 */
#include <errno.h>
#include <string.h>

#include "rdmacm_proto.h"

int rdmacm_decode(const void *buf, size_t len, rdmacm_msg *m)
{
	if (len != RDMACM_MSG_SIZE)
		return -EINVAL;
	memcpy(m, buf, RDMACM_MSG_SIZE);
	return 0;
}

void rdmacm_encode(const rdmacm_msg *m, void *buf)
{
	uint8_t *b = buf;

	/* member by member: the padding bytes go out as zeroes */
	memset(b, 0, RDMACM_MSG_SIZE);
	memcpy(b + RDMACM_OFF_MSG_TYPE, &m->hdr.msg_type, 4);
	memcpy(b + RDMACM_OFF_OP_CODE, &m->hdr.op_code, 4);
	memcpy(b + RDMACM_OFF_SGID, m->hdr.sgid.raw, 16);
	memcpy(b + RDMACM_OFF_ERR_CODE, &m->hdr.err_code, 4);
	memcpy(b + RDMACM_OFF_UMAD_LEN, &m->umad_len, 4);
	memcpy(b + RDMACM_OFF_UMAD_HDR, &m->umad_hdr, sizeof(m->umad_hdr));
	memcpy(b + RDMACM_OFF_MAD, m->mad, RDMACM_MAD_MAX);
}

bool rdmacm_gid_is_zero(const uint8_t gid[16])
{
	static const uint8_t zero[16];
	return !memcmp(gid, zero, 16);
}

const char *rdmacm_op_name(uint32_t op)
{
	switch (op) {
	case RDMACM_OP_REG: return "REG";
	case RDMACM_OP_UNREG: return "UNREG";
	case RDMACM_OP_MAD: return "MAD";
	default: return "unknown";
	}
}

const char *rdmacm_cm_attr_name(const uint8_t *mad)
{
	static const char *const names[] = { "REQ", "MRA", "REJ", "REP", "RTU", "DREQ", "DREP",
					     "SIDR_REQ", "SIDR_REP", "LAP", "APR" };
	unsigned attr = (unsigned)(mad[16] << 8 | mad[17]);
	return attr >= 0x10 && attr <= 0x1a ? names[attr - 0x10] : "message";
}

enum rdmacm_check rdmacm_check_request(const rdmacm_msg *m, enum rdmacm_err *err)
{
	*err = RDMACM_ERR_OK;
	if (m->hdr.msg_type != RDMACM_MSG_REQ)
		return RDMACM_CHECK_CLOSE;
	switch (m->hdr.op_code) {
	case RDMACM_OP_REG:
	case RDMACM_OP_UNREG:
		if (rdmacm_gid_is_zero(m->hdr.sgid.raw))
			*err = RDMACM_ERR_EINVAL;
		break;
	case RDMACM_OP_MAD:
		if (m->umad_len < RDMACM_MAD_HDR || m->umad_len > RDMACM_MAD_MAX ||
		    m->mad[1] != UMAD_CLASS_CM || rdmacm_gid_is_zero(m->hdr.sgid.raw))
			*err = RDMACM_ERR_EINVAL;
		break;
	default:
		*err = RDMACM_ERR_EINVAL;    /* rdmacm-mux: "invalid op_code" */
	}
	return *err ? RDMACM_CHECK_ERR : RDMACM_CHECK_OK;
}

void rdmacm_make_resp(rdmacm_msg *m, enum rdmacm_err err)
{
	m->hdr.msg_type = RDMACM_MSG_RESP;
	m->hdr.err_code = (uint32_t)err;
}

int32_t rdmacm_err_from_errno(int neg_errno)
{
	switch (-neg_errno) {
	case 0:
		return RDMACM_ERR_OK;
	case EINVAL:
		return RDMACM_ERR_EINVAL;
	case EPERM:
	case EACCES:
		return RDMACM_ERR_EACCES;
	default:
		return neg_errno;
	}
}

int rdmacm_make_mad_msg(rdmacm_msg *m, const uint8_t sgid[16], const void *umad, size_t len)
{
	const size_t hs = sizeof(struct ib_user_mad_hdr);

	if (len < hs + RDMACM_MAD_HDR)
		return -EINVAL;
	if (len - hs > RDMACM_MAD_MAX)
		return -EMSGSIZE;
	memset(m, 0, sizeof(*m));
	m->hdr.msg_type = RDMACM_MSG_REQ;
	m->hdr.op_code = RDMACM_OP_MAD;
	memcpy(m->hdr.sgid.raw, sgid, 16);
	m->umad_len = (int32_t)(len - hs);
	memcpy(&m->umad_hdr, umad, hs);
	memcpy(m->mad, (const uint8_t *)umad + hs, len - hs);
	return 0;
}

size_t rdmacm_make_send(const rdmacm_msg *m, uint32_t agent_id, int gid_index, uint8_t *out)
{
	struct ib_user_mad_hdr h = m->umad_hdr;
	size_t madlen = (size_t)m->umad_len;

	h.id = agent_id;
	h.status = 0;
	h.timeout_ms = 0;
	h.retries = 0;
	h.length = (uint32_t)(sizeof(h) + madlen);
	if (h.grh_present && gid_index >= 0)
		h.gid_index = (uint8_t)gid_index;
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), m->mad, madlen);
	return sizeof(h) + madlen;
}
