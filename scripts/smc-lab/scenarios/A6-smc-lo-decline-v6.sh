# smclab: kernel=k61 vms=1 also=*
# A6: as A over IPv6 ::1 (SMCPROTO_SMC6)
# expect: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
# expect@k7: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
run_single() {
	echo_local lo smc smc 6 ::1
}
