# smclab: kernel=k7 vms=1 also=*
# H: net.smc.limit_smc_hs=1 and 24 AF_SMC clients at once against a server that serves one at a time: while the handshake queue is congested the SYN-ACK lacks the SMC option
# expect: connections=24 outcome=smc|fallback
SCN_TIMEOUT=600
run_single() {
	run sysctl -w net.smc.limit_smc_hs=1
	run smctool ueid-add SMCLAB-UEID-1
	NCONN=24 CLI_ENV=SMCECHO_CONNS=24 echo_local lo smc smc 4 127.0.0.1
}
