/*
 * sysfs_export.c - --sysfs-export DIR: after the port is open, write a
 * sysfs-like tree that describes the real port as libibumad sees it
 * (umad_get_ca()/umad_get_port()), in the kernel's formats, so that a mount
 * namespace with a tmpfs on /sys/class filled from DIR/class lets
 * unmodified libibumad programs (ibstat, smpquery, ...) use a node as
 * /dev/infiniband/umad0 on hosts without IB sysfs (the simulated fabric):
 *
 *   DIR/class/infiniband_mad/abi_version
 *   DIR/class/infiniband_mad/umad0/{ibdev,port,dev}
 *   DIR/class/infiniband/<ca>/{node_type,fw_ver,hw_rev,hca_type,board_id,node_guid,sys_image_guid}
 *        (hca_type is what libibumad reads as ca_type; board_id copied when present)
 *   DIR/class/infiniband/<ca>/ports/<p>/{lid,lid_mask_count,sm_lid,sm_sl,state,
 *        phys_state,rate,cap_mask,link_layer,gids/0,pkeys/0..N-1}
 *
 * libibumad 44 reads exactly these (umad.c: get_ca/get_port, dev_to_umad_id,
 * umad_init's abi_version).  Only the daemon's port is exported (as umad0).
 * Reads of the real sysfs use open()/read() so that they work under umad2sim
 * (which wraps open, not fopen).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "front.h"

static int mkdirs(const char *path)
{
	char tmp[4096];
	size_t len = strlen(path);

	if (len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* put(dir, name, fmt, ...): DIR/NAME containing the formatted text + "\n" */
static int put(const char *dir, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(const char *dir, const char *name, const char *fmt, ...)
{
	char path[4096], val[256];
	va_list ap;
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(val) - 1)
		return -EINVAL;
	val[n++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, val, (size_t)n) != n) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

/* first line of a (real or umad2sim) sysfs file, or -1 */
static int get(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static void guid_str(char *s, size_t len, uint64_t be)
{
	uint64_t g = be64toh(be);
	snprintf(s, len, "%04x:%04x:%04x:%04x", (unsigned)(g >> 48) & 0xffff,
		 (unsigned)(g >> 32) & 0xffff, (unsigned)(g >> 16) & 0xffff, (unsigned)g & 0xffff);
}

static const char *state_name(int s)
{
	static const char *const n[] = { "NOP", "DOWN", "INIT", "ARMED", "ACTIVE", "ACTIVE_DEFER" };
	return s >= 0 && s < 6 ? n[s] : "UNKNOWN";
}

static const char *phys_name(int s)
{
	static const char *const n[] = { "<unknown>", "Sleep", "Polling", "Disabled",
					 "PortConfigurationTraining", "LinkUp", "LinkErrorRecovery",
					 "Phy Test" };
	return s >= 0 && s < 8 ? n[s] : "<unknown>";
}

static const char *node_type_name(int t)
{
	switch (t) {
	case 1: return "CA";
	case 2: return "switch";
	case 3: return "router";
	case 4: return "RNIC";
	default: return "unknown";
	}
}

/* snprintf into a path buffer; a path that does not fit is an error */
#define PATHF(buf, ...) do { if (snprintf(buf, sizeof(buf), __VA_ARGS__) >= (int)sizeof(buf)) { \
		snprintf(err, errlen, "%s: path too long", dir); goto out; } } while (0)
#define CK(x) do { int rc_ = (x); if (rc_) { snprintf(err, errlen, "%s: %s", what, strerror(-rc_)); goto out; } } while (0)

int mux_sysfs_export(const char *dir, const char *ca, int portnum, char *err, size_t errlen)
{
	umad_ca_t uca;
	umad_port_t up;
	char d[4096], p[4096], g1[32], g2[32], buf[128];
	const char *what = dir;
	int ret = -1;
	bool have_ca = false, have_port = false;

	if (umad_get_ca(ca, &uca) != 0) {
		snprintf(err, errlen, "umad_get_ca(%s) failed", ca);
		return -1;
	}
	have_ca = true;
	if (umad_get_port(ca, portnum, &up) != 0) {
		snprintf(err, errlen, "umad_get_port(%s, %d) failed", ca, portnum);
		goto out;
	}
	have_port = true;

	/* class/infiniband_mad */
	PATHF(d, "%s/class/infiniband_mad/umad0", dir);
	what = d;
	CK(mkdirs(d));
	PATHF(d, "%s/class/infiniband_mad", dir);
	if (get("/sys/class/infiniband_mad/abi_version", buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "5");
	CK(put(d, "abi_version", "%s", buf));
	PATHF(d, "%s/class/infiniband_mad/umad0", dir);
	CK(put(d, "ibdev", "%s", uca.ca_name));
	CK(put(d, "port", "%d", up.portnum));
	/* the real port's char device numbers, when its sysfs says */
	snprintf(buf, sizeof(buf), "231:0");
	for (int i = 0; i < 64; i++) {
		char path[128], v[64];
		snprintf(path, sizeof(path), "/sys/class/infiniband_mad/umad%d/ibdev", i);
		if (get(path, v, sizeof(v)) != 0 || strcmp(v, uca.ca_name))
			continue;
		snprintf(path, sizeof(path), "/sys/class/infiniband_mad/umad%d/port", i);
		if (get(path, v, sizeof(v)) != 0 || atoi(v) != up.portnum)
			continue;
		snprintf(path, sizeof(path), "/sys/class/infiniband_mad/umad%d/dev", i);
		if (get(path, v, sizeof(v)) == 0 && *v)
			snprintf(buf, sizeof(buf), "%s", v);
		break;
	}
	CK(put(d, "dev", "%s", buf));

	/* class/infiniband/<ca> */
	PATHF(d, "%s/class/infiniband/%s", dir, uca.ca_name);
	CK(mkdirs(d));
	CK(put(d, "node_type", "%d: %s", uca.node_type, node_type_name(uca.node_type)));
	CK(put(d, "fw_ver", "%s", uca.fw_ver));
	CK(put(d, "hw_rev", "%s", uca.hw_ver));
	CK(put(d, "hca_type", "%s", uca.ca_type));
	/* board_id is not in umad_ca_t: copy the real one when there is one */
	{
		char path[256], v[128];
		snprintf(path, sizeof(path), "/sys/class/infiniband/%s/board_id", uca.ca_name);
		if (get(path, v, sizeof(v)) == 0)
			CK(put(d, "board_id", "%s", v));
	}
	guid_str(g1, sizeof(g1), uca.node_guid);
	CK(put(d, "node_guid", "%s", g1));
	guid_str(g1, sizeof(g1), uca.system_guid);
	CK(put(d, "sys_image_guid", "%s", g1));

	/* ports/<p> */
	PATHF(p, "%s/ports/%d", d, up.portnum);
	what = p;
	CK(mkdirs(p));
	CK(put(p, "lid", "0x%x", up.base_lid));
	CK(put(p, "lid_mask_count", "%d", up.lmc));
	CK(put(p, "sm_lid", "0x%x", up.sm_lid));
	CK(put(p, "sm_sl", "%d", up.sm_sl));
	CK(put(p, "state", "%d: %s", up.state, state_name(up.state)));
	CK(put(p, "phys_state", "%d: %s", up.phys_state, phys_name(up.phys_state)));
	/* libibumad keeps the integer part of "N Gb/sec"; 2 means 2.5 */
	if (up.rate == 2)
		CK(put(p, "rate", "2.5 Gb/sec"));
	else
		CK(put(p, "rate", "%d Gb/sec", up.rate));
	CK(put(p, "cap_mask", "0x%08x", be32toh(up.capmask)));
	CK(put(p, "link_layer", "%s", up.link_layer[0] ? up.link_layer : "InfiniBand"));
	PATHF(d, "%s/gids", p);
	CK(mkdirs(d));
	guid_str(g1, sizeof(g1), up.gid_prefix);
	guid_str(g2, sizeof(g2), up.port_guid);
	CK(put(d, "0", "%s:%s", g1, g2));
	PATHF(d, "%s/pkeys", p);
	CK(mkdirs(d));
	for (unsigned i = 0; i < up.pkeys_size; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%u", i);
		CK(put(d, name, "0x%04x", up.pkeys ? up.pkeys[i] : 0));
	}
	if (!up.pkeys_size)
		CK(put(d, "0", "0xffff"));
	ret = 0;
out:
	if (have_port)
		umad_release_port(&up);
	if (have_ca)
		umad_release_ca(&uca);
	return ret;
}
