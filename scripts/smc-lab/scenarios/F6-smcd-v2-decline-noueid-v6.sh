# smclab: kernel=k612lo vms=1 also=*
# F6: as F over IPv6 ::1
# expect: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
run_single() {
	echo_local lo smc smc 6 ::1
}
