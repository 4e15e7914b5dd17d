# smclab: kernel=k612lo vms=1 also=*
# C6: as C over IPv6 ::1
# expect: outcome=smc path=SMC-D version=2 release=1 messages=proposal,accept,confirm
# expect@k510: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	echo_local lo smc smc 6 ::1
}
