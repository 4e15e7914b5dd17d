# smclab: kernel=k612 vms=1 also=*
# U: the client is a TCP socket turned into SMC with setsockopt(TCP_ULP, "smc"), the server AF_SMC: the ULP is there on 6.12 and 6.17 (SYN with the SMC option), not on 5.10 and 6.1.192 (ENOENT, plain TCP), and 7.0 removed it
# expect: outcome=fallback path=- version=- messages=decline decline=0x03030000 decline_from=client
# expect@k510: connections=0
# expect@k61: connections=0
# expect@k612lo: outcome=fallback path=- version=- messages=proposal,decline decline=0x03030008 decline_from=server
# expect@k7: connections=0
run_single() {
	echo_local lo smc ulp 4 127.0.0.1
}
