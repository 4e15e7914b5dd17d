/* smctool: tiny generic-netlink client for the SMC module (no libnl).
 *   smctool ueid-add <UEID>          SMC_NETLINK_ADD_UEID (enables SMC-Rv2 / EID match)
 *   smctool ueid-flush               SMC_NETLINK_FLUSH_UEID
 *   smctool seid-enable|seid-disable SMC_NETLINK_ENABLE_SEID / DISABLE_SEID
 *   smctool pnet-add <PNETID> <ethname> [<ibname> <ibport>]   SMC_PNETID_ADD
 */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SMC_NETLINK_ADD_UEID 10
#define SMC_NETLINK_FLUSH_UEID 12
#define SMC_NETLINK_ENABLE_SEID 14
#define SMC_NETLINK_DISABLE_SEID 15
#define SMC_NLA_EID_TABLE_ENTRY 1
#define SMC_PNETID_ADD 2
#define SMC_PNETID_NAME 1
#define SMC_PNETID_ETHNAME 2
#define SMC_PNETID_IBNAME 3
#define SMC_PNETID_IBPORT 4

struct msg { struct nlmsghdr n; struct genlmsghdr g; char buf[1024]; };

static void addattr(struct msg *m, int type, const void *data, int len)
{
	struct nlattr *a = (void *)((char *)m + NLMSG_ALIGN(m->n.nlmsg_len));
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	m->n.nlmsg_len = NLMSG_ALIGN(m->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static int xfer(int s, struct msg *m, struct msg *r)
{
	static int seq = 1;
	m->n.nlmsg_seq = seq++;
	if (send(s, m, m->n.nlmsg_len, 0) < 0) { perror("send"); return -1; }
	int n = recv(s, r, sizeof(*r), 0);
	if (n < 0) { perror("recv"); return -1; }
	if (r->n.nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(&r->n);
		if (e->error) { fprintf(stderr, "smctool: netlink error: %s\n", strerror(-e->error)); return -1; }
	}
	return n;
}

static int family(int s, const char *name)
{
	struct msg m = {0}, r;
	m.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m.n.nlmsg_type = GENL_ID_CTRL;
	m.n.nlmsg_flags = NLM_F_REQUEST;
	m.g.cmd = CTRL_CMD_GETFAMILY;
	m.g.version = 1;
	addattr(&m, CTRL_ATTR_FAMILY_NAME, name, strlen(name) + 1);
	if (xfer(s, &m, &r) < 0 || r.n.nlmsg_type == NLMSG_ERROR) return -1;
	struct nlattr *a = (void *)((char *)&r + NLMSG_LENGTH(GENL_HDRLEN));
	int rem = r.n.nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	while (rem >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN) {
		if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_FAMILY_ID)
			return *(uint16_t *)((char *)a + NLA_HDRLEN);
		rem -= NLA_ALIGN(a->nla_len);
		a = (void *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct msg m = {0}, r;
	int s, fam;
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: smctool ueid-add UEID | ueid-flush | seid-enable | seid-disable\n"
				"       smctool pnet-add PNETID ETHNAME [IBNAME IBPORT]\n");
		return argc < 2 ? 2 : 0;
	}
	s = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	if (s < 0) { perror("socket"); return 1; }
	int pnet = !strcmp(argv[1], "pnet-add");
	fam = family(s, pnet ? "SMC_PNETID" : "SMC_GEN_NETLINK");
	if (fam < 0) { fprintf(stderr, "smctool: genl family not found (smc loaded?)\n"); return 1; }
	m.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m.n.nlmsg_type = fam;
	m.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	m.g.version = 1;
	if (!strcmp(argv[1], "ueid-add") && argc == 3) {
		char eid[33];
		memset(eid, ' ', 32);
		eid[32] = 0;
		memcpy(eid, argv[2], strlen(argv[2]) > 32 ? 32 : strlen(argv[2]));
		m.g.cmd = SMC_NETLINK_ADD_UEID;
		addattr(&m, SMC_NLA_EID_TABLE_ENTRY, eid, 33);
	} else if (!strcmp(argv[1], "ueid-flush")) {
		m.g.cmd = SMC_NETLINK_FLUSH_UEID;
	} else if (!strcmp(argv[1], "seid-enable")) {
		m.g.cmd = SMC_NETLINK_ENABLE_SEID;
	} else if (!strcmp(argv[1], "seid-disable")) {
		m.g.cmd = SMC_NETLINK_DISABLE_SEID;
	} else if (pnet && argc >= 4) {
		m.g.cmd = SMC_PNETID_ADD;
		addattr(&m, SMC_PNETID_NAME, argv[2], strlen(argv[2]) + 1);
		addattr(&m, SMC_PNETID_ETHNAME, argv[3], strlen(argv[3]) + 1);
		if (argc >= 6) {
			uint8_t port = atoi(argv[5]);
			addattr(&m, SMC_PNETID_IBNAME, argv[4], strlen(argv[4]) + 1);
			addattr(&m, SMC_PNETID_IBPORT, &port, 1);
		}
	} else { fprintf(stderr, "smctool: bad command\n"); return 2; }
	if (xfer(s, &m, &r) < 0) return 1;
	printf("smctool: %s ok\n", argv[1]);
	return 0;
}
