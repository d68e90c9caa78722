/*
 * umx/file_stats.h - read-only views of one virtual umad file and one node
 * for the control socket (`list`): the agents a client registered and its
 * queue/transaction state.  Nothing here changes core state.
 */
#ifndef UMX_FILE_STATS_H
#define UMX_FILE_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <umx/core.h>

struct umx_file_info {
	unsigned agents;            /* registered agents */
	unsigned queued;            /* packets waiting to be read */
	unsigned outstanding;       /* tracked requests in flight */
	bool pkey_index;            /* new header format (ENABLE_PKEY / AGENT2) */
};

struct umx_agent_info {
	uint32_t id;                /* the client's agent id (slot) */
	uint8_t qpn, mgmt_class, class_version, rmpp_version;
	uint32_t oui, flags;
	uint64_t method_mask[2];    /* bit m: method m received (empty: send-only) */
	unsigned outstanding;       /* tracked requests of this agent */
	unsigned cm_ids;            /* CM communication ids it owns */
};

void umx_file_info(const struct umx_file *f, struct umx_file_info *fi);
/* the agent in slot id (0..31): false when the slot is free */
bool umx_file_agent(const struct umx_file *f, uint32_t id, struct umx_agent_info *ai);
/* open files of a node (umx_file_open on it, not yet released) */
unsigned umx_node_files(const struct umx_node *n);

#endif
