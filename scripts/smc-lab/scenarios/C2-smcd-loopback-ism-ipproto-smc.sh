# smclab: kernel=k612lo vms=1 also=* smoke=yes
# C2: as C but both sides use socket(AF_INET, SOCK_STREAM, IPPROTO_SMC) (Linux >= 6.11)
# expect: outcome=smc path=SMC-D version=2 release=1 messages=proposal,accept,confirm
# expect@k510: connections=0
# expect@k61: connections=0
# expect@k612: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	echo_local lo smcinet smcinet 4 127.0.0.1
}
