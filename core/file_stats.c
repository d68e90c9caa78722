/*
 * file_stats.c - read-only accessors for the control socket's `list`
 * (include/umx/file_stats.h).
 */
#include <string.h>

#include <umx/file_stats.h>

#include "core_int.h"

void umx_file_info(const struct umx_file *f, struct umx_file_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	for (uint32_t i = 0; i < UMX_MAX_AGENTS; i++)
		if (f->agent[i])
			fi->agents++;
	fi->queued = f->qlen;
	fi->outstanding = f->outstanding;
	fi->pkey_index = f->use_pkey_index;
}

bool umx_file_agent(const struct umx_file *f, uint32_t id, struct umx_agent_info *ai)
{
	const struct umx_vagent *va;

	if (id >= UMX_MAX_AGENTS || !(va = f->agent[id]))
		return false;
	memset(ai, 0, sizeof(*ai));
	ai->id = va->id;
	ai->qpn = va->qpn;
	ai->mgmt_class = va->mgmt_class;
	ai->class_version = va->class_version;
	ai->rmpp_version = va->rmpp_version;
	ai->oui = va->oui;
	ai->flags = va->flags;
	ai->method_mask[0] = va->method_mask[0];
	ai->method_mask[1] = va->method_mask[1];
	ai->outstanding = va->outstanding;
	ai->cm_ids = va->cm_ids;
	return true;
}

unsigned umx_node_files(const struct umx_node *n)
{
	unsigned k = 0;

	for (const struct umx_file *f = n->files; f; f = f->next)
		k++;
	return k;
}
