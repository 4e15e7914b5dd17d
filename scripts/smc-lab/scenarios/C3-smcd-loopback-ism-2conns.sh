# smclab: kernel=k612lo vms=1 also=*
# C3: as C with two sequential connections: the 2nd Accept/Confirm reuse the link group (first-contact flag off)
# expect: connections=2 outcome=smc path=SMC-D version=2 messages=proposal,accept,confirm
# expect@k510: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k61: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k612: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k617: connections=2 outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
run_single() {
	run smctool ueid-add SMCLAB-UEID-1
	cap_start lo lo
	bg_server smcecho server smc 4 127.0.0.1 7001 2
	run smcecho client smc 4 127.0.0.1 7001 "Hello, world"
	run smcecho client smc 4 127.0.0.1 7001 "Hello again"
	wait_server
	cap_stop
}
