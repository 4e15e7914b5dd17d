# smclab: kernel=k612lo vms=1 also=* smoke=yes trace=yes
# C: loopback-ism (CONFIG_SMC_LO) + a UEID: SMC-Dv2 Proposal / Accept / Confirm over lo, data via loopback-ism
# expect: outcome=smc path=SMC-D version=2 release=1 messages=proposal,accept,confirm
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	echo_local lo smc smc 4 127.0.0.1
}
