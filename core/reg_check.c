/*
 * reg_check.c - validation of REGISTER_AGENT / REGISTER_AGENT2 requests, in
 * the kernel's order and with its errno values.  The kernel checks, in turn:
 *   1. qpn, then (AGENT2) flags          - ib_umad_reg_agent{,2}()
 *   2. a free agent slot (ENOMEM)        - done by vfile.c
 *   3. (AGENT2) OUI upper byte, then the class/version/RMPP/QP checks of
 *      ib_register_mad_agent() (mad.c)
 *   4. the port's QPs (EPROTONOSUPPORT), then method conflicts (EINVAL) -
 *      judged by the router against the real port.
 */
#include <errno.h>

#include "core_int.h"

/* stage 1; on a flags error req->flags is set to the supported flags, as
 * ib_umad_reg_agent2() does with put_user() before returning EINVAL */
int umx_check_reg_pre(struct ib_user_mad_reg_req2 *req, bool agent2)
{
	if (req->qpn != 0 && req->qpn != 1)
		return -EINVAL;
	if (agent2 && (req->flags & ~(uint32_t)IB_USER_MAD_REG_FLAGS_CAP)) {
		req->flags = IB_USER_MAD_REG_FLAGS_CAP;
		return -EINVAL;
	}
	return 0;
}

static bool is_vendor_oui(uint32_t oui)
{
	return (oui & 0xffffff) != 0;
}

/* stage 3 */
int umx_check_reg_agent(const struct ib_user_mad_reg_req2 *req, bool agent2)
{
	uint8_t c = req->mgmt_class;

	/* ib_umad_reg_agent2: "oui invalid" (only looked at with a class) */
	if (agent2 && c && (req->oui & 0xff000000))
		return -EINVAL;
	/* ib_register_mad_agent: "invalid RMPP Version" */
	if (req->rmpp_version && req->rmpp_version != UMAD_RMPP_VERSION)
		return -EINVAL;
	if (!c) {
		/* no registration request: send-only agent; user RMPP needs a class */
		if (req->flags & IB_USER_MAD_USER_RMPP)
			return -EINVAL;
		return 0;
	}
	if (req->mgmt_class_version >= UMX_MAX_MGMT_VERSION)
		return -EINVAL;
	if (c >= UMX_MAX_MGMT_CLASS) {
		/* directed-route SMP is the only class allowed in this range */
		if (c != UMAD_CLASS_SUBN_DIRECTED_ROUTE)
			return -EINVAL;
	} else if (umx_is_vendor_range2(c) && !is_vendor_oui(req->oui)) {
		return -EINVAL;
	}
	if (!umx_is_rmpp_class(c) && req->rmpp_version)
		return -EINVAL;
	/* class must match the QP type */
	bool smi = c == UMAD_CLASS_SUBN_LID_ROUTED || c == UMAD_CLASS_SUBN_DIRECTED_ROUTE;
	if (req->qpn == 0 ? !smi : smi)
		return -EINVAL;
	return 0;
}
