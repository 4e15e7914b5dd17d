# smclab: kernel=k612lo vms=1 also=*
# F6: as F over IPv6 ::1
# expect: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_single() {
	echo_local lo smc smc 6 ::1
}
