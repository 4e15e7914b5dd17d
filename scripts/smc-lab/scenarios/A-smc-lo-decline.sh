# smclab: kernel=k61 vms=1 also=* smoke=yes trace=yes
# A: AF_SMC client -> AF_SMC server over lo (IPv4), no RDMA/ISM device: SMC TCP option, CLC Decline, TCP fallback
# expect: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
# expect@k7: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
run_single() {
	echo_local lo smc smc 4 127.0.0.1
}
